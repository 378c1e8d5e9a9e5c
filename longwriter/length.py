"""Length: how people count words (English words, one per CJK character), reading a length
from an instruction, the length score, and cutting text at a sentence boundary.

Every budget, check and report in longwriter counts through :func:`count_words`."""

from __future__ import annotations

import re

from . import blocks

# CJK ideographs, kana and hangul each count as one word, as Chinese and Japanese writers count.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
# A word of any other script is a run of letters, as LongBench-Write counts English words
# (r"\b[a-zA-Z]+\b", widened to accented and other alphabets): numbers, code symbols and markup
# are not words, so a code block or a table adds only the words in it.
_LETTERS = re.compile(rf"(?:(?![{_CJK}])[^\W\d_])+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])[\"'”’)\]]*\s*|\n\s*\n")

_EN_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(k|thousand)?"
_EN_LENGTH = re.compile(
    rf"(?:about|around|roughly|approximately|at least|~)?\s*{_EN_NUMBER}[\s-]*(?:words?|-word)\b", re.I
)
_ABSURD = 10**15
_ZH_LENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(万|千)?\s*字")


def count_words(text: str) -> int:
    """Count words as LongBench-Write does: each CJK character is one word, and so is every
    run of letters of another script ("don't" is two, "2024" none)."""
    return len(_CJK_CHAR.findall(text)) + len(_LETTERS.findall(text))


def is_cjk(text: str) -> bool:
    """True when most countable words of ``text`` are CJK characters."""
    cjk = len(_CJK_CHAR.findall(text))
    return cjk > 0 and cjk * 2 >= count_words(text)


def parse_length(instruction: str) -> int | None:
    """Read a requested length from an instruction: "a 5000-word report", "about 800 words",
    "2.5k words", "不少于3000字", "一万字". Returns None when the text states no length."""
    m = _ZH_LENGTH.search(instruction)
    if m:
        return _scaled(m.group(1), {"万": 10000, "千": 1000}.get(m.group(2) or "", 1))
    m = re.search(r"([一二两三四五六七八九十])\s*(万|千)\s*字", instruction)
    if m:
        digits = "一二三四五六七八九"
        n = 2 if m.group(1) == "两" else (10 if m.group(1) == "十" else digits.index(m.group(1)) + 1)
        return n * (10000 if m.group(2) == "万" else 1000)
    m = _EN_LENGTH.search(instruction)
    if m:
        return _scaled(m.group(1).replace(",", ""), 1000 if m.group(2) else 1)
    return None


def _scaled(number: str, scale: int) -> int:
    """``number`` times ``scale`` as an int; an absurd one (``1e400`` is infinite) is capped at
    a value that the length check then refuses in one line, instead of overflowing."""
    value = float(number) * scale
    return int(value) if value < _ABSURD else _ABSURD


def length_score(required: int, produced: int) -> float:
    """LongBench-Write's length score (0-100): overshoot is punished less than shortfall."""
    x, y = max(required, 1), produced
    if y <= 0:
        return 0.0
    if y > x:
        return 100.0 * max(0.0, 1.0 - (y / x - 1.0) / 3.0)
    return 100.0 * max(0.0, 1.0 - (x / y - 1.0) / 2.0)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (English and Chinese punctuation, and blank lines). A code
    block, math block, table or list is one unit, kept whole (see :mod:`longwriter.blocks`)."""
    units: list[str] = []
    for is_block, part in blocks.split(text):
        for piece in [part] if is_block else _prose_sentences(part):
            if piece.strip() or not units:
                units.append(piece)
            else:  # the blank lines between blocks stay with them, so joining units restores the text
                units[-1] += piece
    return [u for u in units if u.strip()]


def prose_sentences(text: str) -> list[str]:
    """The sentences of ``text`` outside its code, math, table and list blocks."""
    return [piece for is_block, part in blocks.split(text) if not is_block
            for piece in _prose_sentences(part) if piece.strip()]


def _prose_sentences(text: str) -> list[str]:
    parts, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > start:
            parts.append(text[start : m.end()])
            start = m.end()
    if start < len(text):
        parts.append(text[start:])
    return parts


def trim_to_words(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` words, at the last sentence boundary that fits.
    Falls back to a hard word cut only when even the first sentence is too long."""
    if count_words(text) <= limit:
        return text
    kept, total = [], 0
    for sentence in split_sentences(text):
        n = count_words(sentence)
        if total + n > limit:
            break
        kept.append(sentence)
        total += n
    if kept:
        return "".join(kept).rstrip()
    return " ".join(text.split()[:limit])


def fit_to_words(text: str, target: int) -> str:
    """``text`` cut at the sentence boundary whose length scores best against ``target`` by
    :func:`length_score` (an overshoot costs less than a shortfall), so a section ends near its
    budget rather than under a ceiling above it. Text within the target is returned as is; a
    first sentence far longer than the target falls back to :func:`trim_to_words`."""
    if count_words(text) <= target:
        return text
    best, best_score, total, kept = text, -1.0, 0, []
    for sentence in split_sentences(text):
        total += count_words(sentence)
        kept.append(sentence)
        if length_score(target, total) > best_score:
            best, best_score = "".join(kept), length_score(target, total)
        if total >= target:  # past the target every longer cut scores lower
            break
    return best.rstrip() if best_score >= 50 else trim_to_words(text, target)


def drop_unfinished_tail(text: str) -> str:
    """Drop a trailing sentence fragment (text cut off mid-sentence by a token limit)."""
    sentences = split_sentences(text)
    if len(sentences) > 1 and not _finished(sentences[-1]):
        return "".join(sentences[:-1]).rstrip()
    if sentences and _is_list(sentences[-1]):  # a list's last item may be the cut-off sentence
        return ("".join(sentences[:-1]) + _without_cut_item(sentences[-1])).rstrip()
    return text.rstrip()


_ITEM = re.compile(r"^ {0,3}([-*+]|\d{1,9}[.)]) ")
CUT_ITEM_WORDS = 8  # a list item this long without closing punctuation was cut off, not terse


def _is_list(unit: str) -> bool:
    return blocks.block_in(unit) is not None and bool(_ITEM.match(unit.lstrip("\n")))


def _without_cut_item(block: str) -> str:
    """A list without its last item when that item is a sentence the token limit cut off
    ("- This is where you explain how the parts fit together into one whole that can be used
    as"); a short item without a full stop ("- Green tea") is an ordinary item and stays."""
    lines = block.rstrip("\n").split("\n")
    start = max(i for i, line in enumerate(lines) if _ITEM.match(line) or i == 0)
    item = " ".join(lines[start:]).strip()
    if count_words(item) < CUT_ITEM_WORDS or re.search(r"[.!?。！？…\"'”’)\]:：;；]\s*$", item):
        return block
    return "\n".join(lines[:start]) + ("\n" if start else "")


def _finished(unit: str) -> bool:
    """A sentence ending in closing punctuation, or a complete block (a closed code fence)."""
    block = blocks.block_in(unit)
    if block is not None:
        return blocks.closed(block)
    return bool(re.search(r"[.!?。！？…\"'”’)\]]\s*$", unit))
