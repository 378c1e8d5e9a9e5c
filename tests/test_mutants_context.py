"""Word cuts in the context builder: when not even one sentence fits the allowance (a long
unpunctuated passage), the head or tail is cut by words. Mutation testing found no test that
reached this path. Pure functions with a word-count tokenizer."""

from __future__ import annotations

from longwriter.context import head_tokens, tail_tokens

WORDS = [f"w{i}" for i in range(1, 51)]
ONE_SENTENCE = " ".join(WORDS)  # 50 words, no sentence end


def count(text: str) -> int:
    return len(text.split())


def test_a_head_that_no_sentence_fits_is_cut_to_the_longest_word_prefix_tried():
    """head_tokens(): the word cut shrinks by a fifth per try (50, 40, 32, 25, 20, 16, 12, 9); first fit wins."""
    assert head_tokens(ONE_SENTENCE, 9, count) == " ".join(WORDS[:9])
    assert head_tokens(ONE_SENTENCE, 11, count) == " ".join(WORDS[:9])
    assert head_tokens(ONE_SENTENCE, 12, count) == " ".join(WORDS[:12])


def test_a_tail_that_no_sentence_fits_is_cut_to_the_last_words():
    """tail_tokens(): the word cut keeps the end of the text, not its start."""
    assert tail_tokens(ONE_SENTENCE, 9, count) == " ".join(WORDS[-9:])


def test_a_single_word_still_fits():
    """head_tokens()/tail_tokens(): the cut goes down to one word before giving up."""
    assert head_tokens("a b c d e", 1, count) == "a"
    assert tail_tokens("a b c d e", 1, count) == "e"


def test_nothing_fits_gives_empty_text():
    """head_tokens(): when not even one word fits, the result is empty, never filler."""
    assert head_tokens("a b c", 1, lambda t: 2 * count(t)) == ""
    assert tail_tokens("a b c", 1, lambda t: 2 * count(t)) == ""
