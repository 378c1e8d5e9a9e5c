"""Output mechanics on planted texts: wrapper text and meta-talk (English and Chinese), the
language check, document titles and briefs, the condensed chapter list. No model is loaded."""

from __future__ import annotations

import pytest

from longwriter.checker import Checker, Thresholds
from longwriter.context import ContextBuilder, chapter_titles
from longwriter.errors import PromptError
from longwriter.graph import build_graph
from longwriter.language import foreign_words, language_share
from longwriter.outline import Outline, Section
from longwriter.prompts import Prompts
from longwriter.titling import brief_sentence, broken_word, document_title, fallback_title, stray_words, usable_brief
from longwriter.writing.drafting import clean_section_text
from longwriter.wrappers import MetaTalk

W = MetaTalk()
BODY = "Coffee began in the highlands of Ethiopia. Traders carried it across the Red Sea to Yemen."
ZH_BODY = "咖啡起源于埃塞俄比亚的高原。商人把它带过红海，传到了也门。"

WRAPPED = [
    ("Here you go! " + BODY, BODY),
    ("Here is a rewritten version with improved flow:\n\n" + BODY, BODY),
    ("Sure! Here's section 2: " + BODY, BODY),
    ("Certainly, coffee began in the highlands of Ethiopia. Traders carried it across the Red Sea to Yemen.", BODY),
    ("<<A Brief History of Coffee>>\n" + BODY, BODY),
    ('"The Coffeehouse Era"\n\n' + BODY, BODY),
    ("**Origins**\n" + BODY, BODY),
    (BODY + " Hope all is safe and secure. Ciao", BODY),
    (BODY + " I hope this helps! Let me know if you would like more.", BODY),
    (BODY + "\n\nNote: this text has 120 words.", BODY),
    ("以下是关于咖啡历史的文章：\n\n" + ZH_BODY + "希望这篇文章对你有帮助！", ZH_BODY),
    ("好的，" + ZH_BODY, ZH_BODY),
    ("当然！下面是第二节的内容。\n" + ZH_BODY + "如果你还有其他问题，请随时告诉我。", ZH_BODY),
    ("《咖啡的起源》\n" + ZH_BODY, ZH_BODY),
]


@pytest.mark.parametrize(("raw", "clean"), WRAPPED)
def test_wrapper_sentences_at_either_end_are_removed_and_nothing_is_left(raw, clean):
    out = W.strip(raw, ["A History of Coffee"])
    assert out == clean
    assert W.find(out) == []


@pytest.mark.parametrize("prose", [
    BODY,
    "Here, in the highlands of Ethiopia, coffee began. It spread.",
    "Surely the most famous coffeehouse was Lloyd's. It became an insurer.",
    "The title of the first coffee book was long. Readers loved it.",
    "I hope the harvest is good, the farmer said. It was not.",
    ZH_BODY,
    "以下几个因素决定了咖啡的风味：产地、烘焙和冲煮方式。",
])
def test_ordinary_prose_is_left_alone(prose):
    assert W.strip(prose) == prose
    assert W.find(prose) == []


def test_meta_talk_inside_a_section_is_found_and_removed_as_a_last_resort():
    text = "Coffee began in Ethiopia. Here is a revised version of the text. It spread to Yemen. 以下是改写后的版本。"
    assert W.find(text) == ["Here is a revised version of the text.", "以下是改写后的版本。"]
    assert W.remove(text) == "Coffee began in Ethiopia. It spread to Yemen."


ECHO = """Pour-over coffee rewards patience. The water should be just off the boil.
Here is the outline of the article so far:
Article Outline:
Section 1: How to Brew a Perfect Pour-Over Coffee
Step 1: Begin by explaining the process of making pour-over coffee.
Grind the beans medium-fine.
第2节：冲泡的步骤
大纲：咖啡的历史"""


def test_a_model_echoing_its_prompt_outline_is_meta_talk_and_is_removed():
    """What the embedded model wrote in a 300-word draft (2026-12): the prompt's outline echoed
    inside the section. Steps and the word 'outline' in prose are left alone."""
    found = W.find(ECHO)
    assert len(found) == 2 and found[0].startswith("Here is the outline") and found[1].startswith("第2节")
    assert W.remove(ECHO) == "Pour-over coffee rewards patience. The water should be just off the boil.\n" \
        "Grind the beans medium-fine."
    assert len(W.find("Here is the full paragraph written in flowing prose. I made changes to improve grammar.")) == 2
    prose = "Step 1: Rinse the filter.\nThe outline of the coast was dark. Part of the charm is the ritual."
    assert W.find(prose) == []


def test_a_repeated_title_or_heading_line_is_removed_only_at_a_sections_start():
    assert clean_section_text("Coffee in Europe: It arrived in Venice. Then London.", "Coffee in Europe") == \
        "It arrived in Venice. Then London."
    assert clean_section_text("The Story of Coffee\nIt arrived in Venice.", "Europe",
                              titles=("The Story of Coffee",)) == "It arrived in Venice."
    # A continuation may open mid-sentence on a short line: that line is kept.
    assert clean_section_text("and then to London\nwhere it thrived.", "Europe", start=False) == \
        "and then to London\nwhere it thrived."


def test_the_word_lists_come_from_the_template_and_a_user_may_override_them(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "wrappers.j2").write_text("[opening]\nbehold\n[opening end]\n[banned openings]\nBehold\n"
                                        "[banned openings end]\n")
    mine = MetaTalk(Prompts(folder))
    assert mine.strip("Behold: " + BODY) == BODY
    assert mine.strip("Here you go! " + BODY) == "Here you go! " + BODY  # the built-in list is replaced
    assert mine.banned_openings == ("Behold",)
    assert "Here" in W.banned_openings and "以下" in W.banned_openings
    (folder / "wrappers.j2").write_text("[anywhere]\n(unclosed\n[anywhere end]\n")
    with pytest.raises(PromptError, match="wrappers.j2"):
        MetaTalk(Prompts(folder)).find("x")


# ------------------------------------------------------------------ language


@pytest.mark.parametrize(("text", "language", "share"), [
    (ZH_BODY, "zh", 1.0),
    (BODY, "zh", 0.0),
    (BODY, "en", 1.0),
    (ZH_BODY, "en", 0.0),
    ("咖啡起源于埃塞俄比亚。Python 和 GPU 很重要。", "zh-Hans", 14 / 16),
    ("In 1615 coffee reached Venice.", "en", 1.0),  # numbers belong to no language
    ("Кофе появился в Эфиопии.", "ru", 1.0),
    ("", "zh", 1.0),
])
def test_language_share_counts_words_by_script(text, language, share):
    assert language_share(text, language) == pytest.approx(share)


class _Flat:
    """An embedder that finds everything on topic (the language and meta-talk checks are under test)."""

    def __init__(self, name):
        self.name = name

    def encode(self, texts):
        import numpy as np

        return np.ones((len(texts), 4), dtype=np.float32) / 2


@pytest.mark.parametrize(("text", "problem"), [
    (BODY, "wrong_language"),
    ("好的，" + ZH_BODY + "希望这篇文章对你有帮助。以下是更多内容。", "meta_talk"),
])
def test_a_section_in_the_wrong_language_or_with_meta_talk_fails_the_checker(text, problem):
    checker = Checker(_Flat("minilm"), _Flat("ngrams"), Thresholds(max_redundancy=1.0))
    scores = checker.score(text, topic="咖啡的历史", title="起源", brief="咖啡的起源", budget=len(text), accepted={},
                           language="zh")
    assert problem in scores.problems
    clean = checker.score(ZH_BODY, topic="咖啡的历史", title="起源", brief="咖啡的起源", budget=len(ZH_BODY),
                          accepted={}, language="zh")
    assert clean.problems == [] and clean.language_share == 1.0


def test_the_feedback_for_a_chinese_rewrite_is_in_chinese():
    from longwriter.checker import Scores
    from longwriter.writing.prompts import SectionPrompts

    outline = Outline(title="咖啡", topic="咖啡的历史", language="zh",
                      sections=[Section(id="a", title="起源", brief="咖啡的起源", words=300)], words=300)
    ctx = ContextBuilder(outline, build_graph(outline, "serial"), len).build("a", {}, {})
    prompts = SectionPrompts(outline, Prompts(), len)
    scores = Scores(topic_relevance=0, brief_relevance=0, redundancy=0, shared_ngrams=0, repetition=0,
                    length_ratio=1, problems=["wrong_language", "meta_talk"])
    feedback = prompts.feedback(scores, ctx)
    assert len(feedback) == 2 and all(language_share(line, "zh") > 0.8 for line in feedback)
    assert language_share(prompts.section(ctx, feedback), "zh") > 0.8
    assert language_share(prompts.system, "zh") > 0.8


# ------------------------------------------------------------------ titles and briefs


@pytest.mark.parametrize(("raw", "title"), [
    ("A Brief History of Coffee", "A Brief History of Coffee"),
    ('**Title: "Coffee Across Centuries"**', "Coffee Across Centuries"),
    ("Coffeehouses and Revolutions", "Coffeehouses and Revolutions"),
    ("Here is a sample of your request in 82 characters max", "The History of Coffee"),
    ("Sure! Coffee Through the Ages", "The History of Coffee"),
    ("The Coffeethesagement's Rich History", "The History of Coffee"),
    ("Coffee: From the Ethiopian Highlands to the Modern Café, a Journey Through Trade and Culture and Time",
     "The History of Coffee"),
    ("咖啡的历史", "The History of Coffee"),  # another script
    ("A Guide to Brewing Coffee  - A Comprehensive Guide to Brewing Coffee", "A Guide to Brewing Coffee"),
    ("Coffee: A Guide to Brewing", "Coffee: A Guide to Brewing"),  # a subtitle that adds something
])
def test_a_document_title_that_echoes_the_request_is_too_long_or_broken_falls_back_to_the_topic(raw, title):
    assert document_title(raw, "the history of coffee.", "en", W) == title


def test_chinese_titles():
    assert document_title("《咖啡简史》", "咖啡的历史", "zh", W) == "咖啡简史"
    assert document_title("以下是标题：咖啡", "咖啡的历史", "zh", W) == "咖啡的历史"
    assert fallback_title("咖啡的历史。", "zh") == "咖啡的历史"


def test_a_title_with_words_of_another_script_or_long_numbers_falls_back_unless_the_topic_has_them():
    assert foreign_words("可以提到；17598624-PURCELYLAND", "zh") == ["PURCELYLAND"]
    assert foreign_words("Café 咖啡", "en") == ["咖", "啡"]
    assert stray_words("可以提到；17598624-PURCELYLAND", "茶文化", "zh") == ["PURCELYLAND", "17598624"]
    assert document_title("可以提到；17598624-PURCELYLAND", "茶文化", "zh", W) == "茶文化"
    assert document_title("Python 编程入门", "写一篇关于Python编程的文章", "zh", W) == "Python 编程入门"
    assert document_title("咖啡的1000年", "咖啡的历史", "zh", W) == "咖啡的1000年"  # a year or count is fine


@pytest.mark.parametrize(("raw", "title", "language", "brief"), [
    ("I'm glad you found my explanation helpful.", "茶的起源", "zh", "茶的起源"),  # English chat
    ("I'm glad you found my explanation helpful.", "Roasting", "en", "Roasting"),  # chat in any language
    ("This section explains roasting.", "烘焙", "zh", "烘焙"),  # another language
    ("这一节讲述茶的起源。", "茶的起源", "zh", "这一节讲述茶的起源。"),
    ("It explains how beans are roasted.", "Roasting", "en", "It explains how beans are roasted."),
])
def test_a_brief_in_another_language_or_that_is_chat_becomes_the_sections_title(raw, title, language, brief):
    assert usable_brief(raw, title, language, W) == brief


def test_broken_words():
    assert broken_word("The Coffeethesagement Story", "coffee") == "Coffeethesagement"
    assert broken_word("CoffeeThe Story", "coffee") == "CoffeeThe"
    assert broken_word("Internationalization of Coffee", "internationalization of coffee") == ""
    assert broken_word("Coffeehouses of Vienna", "coffee") == ""


@pytest.mark.parametrize(("raw", "brief"), [
    ("It covers the beans. Then it rambles.", "It covers the beans."),
    ("Sure! It covers the beans.", "It covers the beans."),
    ("It explains how coffee was first grown, roasted and traded by the ancient E",
     "It explains how coffee was first grown."),
    ("It explains how the first coffee was grown and traded by the ancient E", "It explains how the first coffee "
     "was grown and traded by the ancient."),
    ("这一节讲述咖啡如何传到也门，以及商人如何把", "这一节讲述咖啡如何传到也门。"),
    ("Coffee", ""),  # nothing usable: the planner falls back to the title
])
def test_a_brief_ends_at_a_sentence_boundary(raw, brief):
    assert brief_sentence(raw, W) == brief


def test_a_long_brief_is_cut_at_a_word_boundary_within_the_bound():
    out = brief_sentence("It explains " + "many coffee things " * 40, W, limit=120)
    assert len(out) <= 120 and out.endswith("things.") or out.endswith("coffee.") or out.endswith("many.")
    assert not out.endswith("ma.")


# ------------------------------------------------------------------ chapter titles


def _long_outline(chapters: int) -> Outline:
    sections = [Section(id=f"c{i}", title=f"Chapter number {i} on coffee and its long and winding story", words=600,
                        children=[Section(id=f"c{i}-{j}", title=f"Part {j}", words=300) for j in (1, 2)])
                for i in range(1, chapters + 1)]
    return Outline(title="Coffee", topic="coffee", sections=sections, words=600 * chapters)


def test_every_section_sees_the_chapter_titles_condensed_and_bounded():
    outline = _long_outline(40)
    count = lambda text: len(text.split())  # noqa: E731 - a word is a token here
    rows = chapter_titles(outline, "c20-1", count, limit=100)
    assert count("; ".join(rows)) <= 100
    assert any(r.startswith("20 ") for r in rows) and rows[0] == "..." and rows[-1] == "..."
    assert all(len(r.split()) <= 7 or r == "..." for r in rows)  # titles cut short first
    small = _long_outline(3)
    assert len(chapter_titles(small, "c1-1", count)) == 3  # the window leaves some out: all three shown
    ctx = ContextBuilder(small, build_graph(small, "chapter"), count).build("c2-1", {}, {})
    assert ctx.chapters == [f"{i} {s.title}" for i, s in enumerate(small.sections, 1)]
    tiny = _long_outline(1)
    assert chapter_titles(tiny, "c1-1", count) == []  # the outline window already shows everything


# ------------------------------------------------------------------ length


def test_a_long_draft_is_cut_at_the_boundary_that_scores_best_not_under_a_ceiling():
    from longwriter.length import count_words, fit_to_words

    sentences = ["One two three four five six seven eight nine ten. "] * 12  # 120 words, 10 a sentence
    text = "".join(sentences).strip()
    assert count_words(fit_to_words(text, 100)) == 100
    assert count_words(fit_to_words(text, 103)) == 100  # 100 (short by 3%) scores above 110 (over by 7%)
    assert count_words(fit_to_words(text, 107)) == 110  # 110 (over by 3%) scores above 100 (short by 7%)
    assert fit_to_words(text, 200) == text  # within the target: as is
    assert count_words(fit_to_words("word " * 90 + "end.", 20)) == 20  # one huge sentence: a word cut


def test_headings_count_towards_the_document_and_come_off_the_leaves_budgets():
    from longwriter.context import net_words
    from longwriter.length import count_words

    outline = _long_outline(2)  # 2 chapters x 2 parts, 300 words each
    owed = outline.heading_words()
    lines = [line for _, line in outline.headings()]
    assert sum(owed.values()) == sum(count_words(line.lstrip("#")) for line in lines)
    first = outline.leaves()[0].id
    own = count_words(lines[2].lstrip("#"))
    assert lines[2].startswith("### 1.1 ") and own == count_words(outline.leaves()[0].title)  # "1.1" is no word
    assert owed[first] == count_words("Coffee") + count_words(lines[1].lstrip("#")) + own  # title, chapter, own
    ctx = ContextBuilder(outline, build_graph(outline, "chapter"), len).build(first, {}, {})
    assert ctx.words == 300 - owed[first]
    assert net_words(40, 30) == 20  # never below half the budget


def test_references_entries_come_off_the_budget_of_the_leaf_that_first_shows_their_source():
    from longwriter.context import owed_words
    from longwriter.length import count_words

    outline = _long_outline(1)  # leaves c1-1, c1-2
    headings = outline.heading_words()
    owed = owed_words(outline, {"c1-1": ["bees.md, Mites", "bees.md, Honey"], "c1-2": ["bees.md, Honey", "tea.md"]})
    first = count_words("References") + count_words("1. bees.md, Mites") + count_words("2. bees.md, Honey")
    assert owed["c1-1"] == headings["c1-1"] + first
    assert owed["c1-2"] == headings["c1-2"] + count_words("3. tea.md")  # Honey is already listed
    assert owed_words(outline, {}) == headings


def test_the_report_counts_the_whole_document_headings_included(tmp_path):
    from longwriter.backends.fake import ScriptedBackend
    from longwriter.length import count_words
    from longwriter.pipeline import expand
    from longwriter.writer import WriterSettings

    from .conftest import make_outline, smart_responder

    result = expand(make_outline(2, 2, 800), tmp_path, backend=ScriptedBackend(smart_responder),
                    settings=WriterSettings(check=False))
    assert result.report.produced_words == count_words((tmp_path / "document.md").read_text())
    assert result.report.produced_words > sum(s.words for s in result.report.sections)


# ------------------------------------------------------------------ sampling defaults


def test_unset_sampling_comes_from_the_model_then_from_longwriter():
    from longwriter import defaults
    from longwriter.writer import WriterSettings

    assert WriterSettings().with_model_defaults({"temperature": 0.2, "top_p": 0.8}).temperature == 0.2
    mixed = WriterSettings(temperature=0.9).with_model_defaults({"temperature": 0.2})
    assert (mixed.temperature, mixed.top_p) == (0.9, defaults.TOP_P)  # the user's value wins
    assert WriterSettings().with_model_defaults({}).temperature == defaults.TEMPERATURE


def test_a_models_generation_config_gives_its_recommended_sampling():
    from transformers import GenerationConfig

    from longwriter.backends.transformers_backend import recommended_sampling

    assert recommended_sampling(GenerationConfig(do_sample=True, temperature=0.6, top_p=0.95)) == \
        {"temperature": 0.6, "top_p": 0.95}
    assert recommended_sampling(GenerationConfig(bos_token_id=1, eos_token_id=2)) == {}  # transformers' 1.0 is no advice
    assert recommended_sampling(None) == {}


def test_the_run_uses_and_reports_the_models_recommended_sampling(tmp_path):
    from longwriter.backends.fake import ScriptedBackend
    from longwriter.pipeline import expand
    from longwriter.writer import WriterSettings

    from .conftest import make_outline, smart_responder

    backend = ScriptedBackend(smart_responder)
    backend.recommended = {"temperature": 0.2, "top_p": 0.8}
    result = expand(make_outline(1, 2, 400), tmp_path, backend=backend, settings=WriterSettings(check=False))
    prose = [r for r in backend.requests if "Write about" in r.messages[-1].content]
    assert prose and {(r.sampling.temperature, r.sampling.top_p) for r in prose} == {(0.2, 0.8)}
    assert result.report.sampling == {"temperature": 0.2, "top_p": 0.8, "repetition_penalty": 1.15}


# ------------------------------------------------------------------ a Chinese run on the scripted model


def test_a_chinese_section_written_in_english_or_wrapped_is_rewritten_in_chinese_and_counted(tmp_path):
    """First drafts come back in English and wrapped in meta-talk; the checker rejects them with
    Chinese feedback, the rewrites are Chinese, and the report counts what was found."""
    from longwriter.backends.fake import ScriptedBackend
    from longwriter.pipeline import expand
    from longwriter.writer import WriterSettings

    def respond(request):
        user = request.messages[-1].content
        if "概括" in user:
            return "咖啡的起源。"
        if "之前的一稿未被采用" in user:  # a rewrite, with the checker's Chinese feedback
            assert "没有用中文写作" in user or "关于文章本身的话" in user
            return ZH_BODY * 3
        if "节“起源”" in user:
            return "Here is the section. " + BODY * 3
        return "好的，" + ZH_BODY * 3 + "以下是更多内容。" + ZH_BODY

    outline = Outline(title="咖啡", topic="咖啡的历史", language="zh", words=200, sections=[
        Section(id="a", title="起源", brief="咖啡的起源", words=100),
        Section(id="b", title="传播", brief="咖啡的传播", words=100)])
    backend = ScriptedBackend(respond)
    checker = Checker(_Flat("minilm"), _Flat("ngrams"), Thresholds(max_redundancy=1.0, max_shared_ngrams=1.0,
                                                                  max_repetition=1.0))
    result = expand(outline, tmp_path, backend=backend, checker=checker, settings=WriterSettings())
    assert all(language_share(s.text, "zh") == 1.0 and not W.find(s.text) for s in result.report.sections)
    assert result.report.problems["wrong_language"] == 1 and result.report.problems["meta_talk"] == 1
    assert result.report.wrapper_sections == 2  # "Here is the section." and "好的，" were cut
    system = backend.requests[0].messages[0].content
    assert "简体中文" in system and "You are" not in system
    assert all(r.sampling.script == "zh" for r in backend.requests)


def test_a_broken_user_pattern_is_refused_in_one_line_before_any_model_loads(tmp_path):
    from click.testing import CliRunner

    from longwriter.cli import main

    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "wrappers.j2").write_text("[closing]\n(unclosed\n[closing end]\n")
    result = CliRunner().invoke(main, ["draft", "--topic", "coffee", "--prompts-dir", str(folder),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 7 and "wrappers.j2" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("prose", [
    "Plant tomatoes in May. If you have a garden, start with two plants.",
    "This is the story of coffee. It begins in Ethiopia.",
    "The new version of the loom doubled output. Weavers protested.",
    "Note that the beans must dry. Would you believe it took weeks?",
    "茶叶要避光保存。如果你有一个花园，可以自己种茶。",
])
def test_sentences_that_only_resemble_wrappers_stay_at_the_edges_and_inside(prose):
    assert W.strip(prose) == prose and W.find(prose) == []
