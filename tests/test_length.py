from longwriter.length import count_words, drop_unfinished_tail, is_cjk, length_score, parse_length, trim_to_words


def test_count_words_mixed_english_and_chinese():
    assert count_words("Coffee came from Ethiopia.") == 4
    assert count_words("咖啡的历史") == 5
    assert count_words("Coffee 咖啡 is old, 很古老。") == 3 + 2 + 3
    assert count_words("  -- , ") == 0
    # as LongBench-Write counts: runs of letters; numbers and code symbols are not words
    assert count_words("state-of-the-art 2024 AI") == 5
    assert count_words("don't café naïve") == 4
    assert count_words("x = foo_bar(1, 2); // 3.14") == 3
    assert count_words("| 1 | 2 |\n| --- | --- |\n| 3.5 | 42 |") == 0


def test_is_cjk():
    assert is_cjk("咖啡的历史很长 coffee")
    assert not is_cjk("coffee history and 咖啡")


def test_parse_length_from_instructions():
    assert parse_length("Write a 5000-word report on tea") == 5000
    assert parse_length("about 800 words on coffee") == 800
    assert parse_length("a 5,000 word essay") == 5000
    assert parse_length("2.5k words about trains") == 2500
    assert parse_length("写一篇不少于3000字的文章") == 3000
    assert parse_length("一篇两万字的报告") == 20000
    assert parse_length("1.5万字") == 15000
    assert parse_length("The history of coffee") is None


def test_length_score_formula():
    assert length_score(1000, 1000) == 100
    assert round(length_score(1000, 2000), 2) == 66.67  # overshoot by 100%
    assert length_score(1000, 500) == 50  # shortfall by half
    assert length_score(1000, 5000) == 0
    assert length_score(1000, 0) == 0


def test_trim_cuts_at_sentence_boundary():
    text = "One two three. Four five six. Seven eight nine."
    assert trim_to_words(text, 7) == "One two three. Four five six."
    assert trim_to_words(text, 100) == text
    assert trim_to_words("a b c d e f", 3) == "a b c"


def test_drop_unfinished_tail():
    assert drop_unfinished_tail("Done here. And then the") == "Done here."
    assert drop_unfinished_tail("Only a fragment") == "Only a fragment"
