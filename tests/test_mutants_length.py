"""Lengths written with Chinese numerals ("三千字", "两万字", "十万字") and with 千/万 after digits:
mutation testing showed no test read any of them. Pure functions, no backend."""

from __future__ import annotations

import pytest

from longwriter.length import parse_length


@pytest.mark.parametrize("instruction, words", [
    ("写一篇一千字的文章", 1000),
    ("写一篇三千字的文章", 3000),
    ("九千字左右", 9000),
    ("两万字的报告", 20_000),
    ("十万字的小说", 100_000),
    ("写五万字", 50_000),
])
def test_chinese_numeral_lengths(instruction, words):
    """parse_length(): 一..九, 两 and 十 before 千/万字 give the right number of characters."""
    assert parse_length(instruction) == words


@pytest.mark.parametrize("instruction, words", [
    ("不少于3千字", 3000),
    ("约2.5万字", 25_000),
    ("800字", 800),
])
def test_digit_lengths_with_chinese_units(instruction, words):
    """parse_length(): digits followed by 千 or 万 scale, digits alone do not."""
    assert parse_length(instruction) == words
