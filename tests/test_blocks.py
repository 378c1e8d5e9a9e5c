"""Code, math, tables and lists pass whole through the prose machinery: the cleaner, sentence
splitting, cutting to length, meta-talk and citations (issue: templates' rich sections)."""

from longwriter import blocks
from longwriter.citations import resolve
from longwriter.length import count_words, drop_unfinished_tail, fit_to_words, prose_sentences, split_sentences
from longwriter.wrappers import MetaTalk
from longwriter.writing.drafting import clean_section_text

CODE = "```python\n# Here is the index of a key\ndef index(key, n):\n    return hash(key) % n  # see [3]\n```\n"
TABLE = "| op | cost |\n| --- | --- |\n| get | O(1) |\n"
MATH = "$$\nT(n) = O(1)\n$$\n"
SECTION = (f"Hashing maps keys to buckets. It is fast.\n\n{CODE}\n{TABLE}\n{MATH}\n"
           "Collisions are handled by chaining [1].")


def test_split_finds_each_block_and_joins_back_exactly():
    parts = blocks.split(SECTION)
    assert [p for is_block, p in parts if is_block] == [CODE, TABLE, MATH]
    assert "".join(p for _, p in parts) == SECTION
    assert "".join(split_sentences(SECTION)) == SECTION
    assert blocks.split("Plain prose. No blocks.") == [(False, "Plain prose. No blocks.")]


def test_lists_are_blocks_and_a_cut_fence_is_not_closed():
    listed = "Steps:\n\n1. hash the key\n2. take the remainder\n"
    assert [p for b, p in blocks.split(listed) if b] == ["1. hash the key\n2. take the remainder\n"]
    assert blocks.closed(CODE) and blocks.closed(MATH) and blocks.closed(TABLE)
    assert not blocks.closed("```python\nx = 1\n")
    assert not blocks.closed("$$\nx = 1\n")
    assert not blocks.closed("````\nx\n```\n")  # a shorter fence does not close a longer one


def test_the_cleaner_keeps_code_tables_and_math_and_still_cuts_wrappers():
    text = f"Here is the section you asked for:\n\n{SECTION} Hope this helps!"
    clean = clean_section_text(text, "Hashing")
    assert clean == SECTION  # "# Here is…" in the code is neither a heading nor meta-talk
    assert clean_section_text(f"{CODE}\nThen it returns.", "Hashing").startswith("```python\n# Here is")


def test_meta_talk_and_citations_are_looked_for_in_prose_only():
    wrappers = MetaTalk()
    assert wrappers.find(SECTION) == []
    assert wrappers.find(SECTION + " Let me know what you think.")
    assert wrappers.remove(SECTION + " Let me know what you think.") == SECTION
    assert wrappers.find("```text\nLet me know what you think.\n```\n") == []  # inside code: not ours
    resolved = resolve(SECTION + " A claim [7].", shown=1)
    assert "% n  # see [3]" in resolved and "[7]" not in resolved and "chaining [1]." in resolved
    assert all("```" not in s and "|" not in s for s in prose_sentences(SECTION))


def test_lengths_count_words_not_code_symbols():
    assert count_words(MATH) == 3  # T, n, O: "(1)" and "=" are no words
    assert count_words(TABLE) == count_words("op cost get O")


def test_an_unclosed_fence_at_the_end_is_an_unfinished_tail():
    cut = SECTION + "\n\n```python\ndef f(x):\n    return"
    assert drop_unfinished_tail(cut) == SECTION
    assert drop_unfinished_tail(SECTION + "\n\n" + CODE) == (SECTION + "\n\n" + CODE).rstrip()


def test_cutting_to_length_never_splits_a_block():
    for target in range(3, count_words(SECTION) + 1):
        kept = fit_to_words(SECTION, target)
        assert kept.count("```") % 2 == 0 and kept.count("$$") % 2 == 0
        assert SECTION.startswith(kept)


def test_a_repeated_title_is_cut_but_a_sentence_that_starts_with_the_title_word_is_kept():
    assert clean_section_text("Hashing maps keys to buckets.", "Hashing") == "Hashing maps keys to buckets."
    assert clean_section_text("Hashing: Hashing maps keys to buckets.", "Hashing") == "Hashing maps keys to buckets."
    assert clean_section_text("Hashing\n\nKeys go to buckets.", "Hashing") == "Keys go to buckets."


def test_a_fence_never_closed_is_cut_as_a_tail_or_unwrapped_as_prose():
    """The embedded model once opened a fence and wrote its headings and prose inside it; in
    the document every later heading became code."""
    junk = "```python\n# Introduction to the basics\n## Overview of the Basics\nA hash table stores keys. It is fast."
    assert clean_section_text(junk, "Core Concepts") == "A hash table stores keys. It is fast."
    cut = "Hashing maps keys. It is fast.\n\n```python\ndef index(key):\n    return"
    assert clean_section_text(cut, "Hashing") == "Hashing maps keys. It is fast."
    assert clean_section_text(SECTION, "Hashing") == SECTION  # closed blocks are untouched


def test_assembly_seals_a_section_that_ends_inside_a_fence(tmp_path):
    from longwriter.outline import parse_outline
    from longwriter.store import RunDir
    from longwriter.writer import SectionResult

    outline = parse_outline({"title": "T", "topic": "t", "words": 100, "sections": [
        {"id": "a", "title": "A", "words": 1}, {"id": "b", "title": "B", "words": 1}]})
    results = {"a": SectionResult(id="a", text="Text.\n\n~~~~\ncode", words=1, budget=50),
               "b": SectionResult(id="b", text="More text.", words=2, budget=50)}
    with RunDir(tmp_path / "run", topic="t") as run:
        document = run.assemble(outline, results)
    assert "~~~~\ncode\n~~~~\n" in document and blocks.split(document)[-1] == (False, "\n## 2 B\n\nMore text.\n")
    assert blocks.sealed("no block") == "no block" and blocks.sealed("```\nx\n```") == "```\nx\n```"


def test_a_lists_last_item_cut_off_mid_sentence_goes_and_terse_items_stay():
    """Seen in an embedded-model tech-blog: "- This is where you explain how all these parts fit
    together into one cohesive whole that can be used as" ended a section."""
    cut = ("Intro sentence here.\n\n1. Introduction\n   - It sets the stage. It ends.\n2. Overview\n"
           "   - This is where you explain how all these parts fit together into one whole that can be used as")
    assert drop_unfinished_tail(cut) == "Intro sentence here.\n\n1. Introduction\n   - It sets the stage. It ends.\n2. Overview"
    terse = "Teas to try:\n\n- Green tea\n- Black tea\n- A smoky lapsang souchong from the Wuyi mountains of Fujian"
    assert drop_unfinished_tail(terse) == terse.replace("\n- A smoky lapsang souchong from the Wuyi mountains of Fujian", "")
    assert drop_unfinished_tail("Teas:\n\n- Green tea\n- Black tea") == "Teas:\n\n- Green tea\n- Black tea"
    assert drop_unfinished_tail("Steps:\n\n1. Hash the key, then take the remainder modulo the size.") == \
        "Steps:\n\n1. Hash the key, then take the remainder modulo the size."
