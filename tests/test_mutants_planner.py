"""Planner behaviour that mutation testing showed no test pinned down: the outline's shape, title
cleaning, the sampling and prompts of every planning request, the fallbacks for unusable model
answers, section ids and the one-line refusals. Scripted backend only."""

from __future__ import annotations

import re

import pytest

from longwriter.backends.fake import ScriptedBackend
from longwriter.errors import InputError, PlanningError
from longwriter.outline import MAX_TOPIC_CHARS
from longwriter.planner import MAX_SEED, PlanRequest, Planner, _duplicate, check_topic, clean_title, shape
from longwriter.prompts import Prompts

from .conftest import chapter_asked, is_title_request, smart_responder


def _number(request) -> int:
    """The list position a title request asks for (its prefill ends with 'N.')."""
    return int(re.search(r"(\d+)\.$", request.prefill.strip()).group(1))


def _titles_by_position(tops, subs=None, doc="A Short History of Coffee", brief=None):
    """A responder answering title requests from fixed lists (top level, and per chapter)."""

    def respond(request):
        user = request.messages[-1].content
        if request.prefill:
            k = _number(request)
            parent = chapter_asked(user)
            names = (subs or {}).get(parent, []) if parent else tops
            return f" {names[k - 1]}" if k <= len(names) else f" {names[-1]}" if names else ""
        if is_title_request(user):
            return doc
        if brief is not None and "say what this section should explain" in user:
            return brief
        return smart_responder(request)

    return respond


def _plan(responder, **request):
    backend = ScriptedBackend(responder)
    outline = _run_plan(Planner(backend, Prompts()), PlanRequest(**{"topic": "The history of coffee", **request}))
    return outline, backend


# ------------------------------------------------------------------ shape


@pytest.mark.parametrize("words, expected", [
    (300, (2, 1)), (1200, (5, 1)), (3000, (4, 3)), (10_000, (11, 4)), (20_000, (17, 5)),  # the docstring's examples
    (806, (4, 1)),       # 806 / 230 = 3.5 leaves, rounded up: about 230 words per leaf
    (1840, (8, 1)),      # 8 leaves are still a flat list
    (2070, (3, 3)),      # 9 leaves become chapters of 3
    (6670, (10, 3)),     # 29 leaves: chapters of 3
    (6900, (8, 4)),      # 30 leaves: chapters of 4
    (13_570, (15, 4)),   # 59 leaves: chapters of 4
    (13_800, (12, 5)),   # 60 leaves: chapters of 5
])
def test_shape_follows_the_documented_leaf_size_and_chapter_widths(words, expected):
    """shape(): ~230 words per leaf, flat up to 8 leaves, chapters of 3/4/5 at the 30 and 60 leaf steps."""
    assert shape(words, None, None) == expected


def test_shape_with_given_sections_picks_depth_and_caps_leaves():
    """shape(): explicit sections get subsections once there are two leaves each; leaves cap at 120."""
    assert shape(920, 2, None) == (2, 2)  # 4 leaves over 2 chapters: exactly two each, so nested
    assert shape(920, 4, None) == (4, 1)
    # 200,000 words would be 870 leaves; capped at 120, 48 chapters get round(2.5) = 2 each
    assert shape(200_000, 48, None) == (48, 2)


# ------------------------------------------------------------------ titles


def test_clean_title_cuts_a_sentence_to_ten_words_and_drops_weak_endings():
    """clean_title(): more than ten words keeps the first ten, then drops trailing 'of', 'the'..."""
    eleven = "Coffee trade routes across the sea linked many distant ports worldwide"
    assert clean_title(eleven) == "Coffee trade routes across the sea linked many distant ports"
    twelve = "Coffee trade routes across the sea linked many ports of the world"
    assert clean_title(twelve) == "Coffee trade routes across the sea linked many ports"
    ten = "Coffee trade routes across the sea linked many distant ports"
    assert clean_title(ten) == ten


def test_clean_title_length_bounds():
    """clean_title(): a title must be 3 to 100 characters, else it is unusable ('')."""
    assert clean_title("Tea") == "Tea"
    assert clean_title("Te") == ""
    assert clean_title("A" * 100) == "A" * 100
    assert clean_title("A" * 101) == ""


def test_a_leading_the_does_not_make_a_title_new():
    """_duplicate(): 'The Ports' repeats a sibling 'Ports' (a leading 'the' is ignored)."""
    assert _duplicate("The Ports", ["Ports"], None, "coffee")
    assert _duplicate("the ports", ["Ports of Call"], None, "coffee")
    assert not _duplicate("Harbours", ["Ports"], None, "coffee")


def test_titles_that_only_repeat_the_parent_chapter_are_resampled():
    """_duplicate(): a subsection titled like its chapter says nothing new."""
    assert _duplicate("Chapter one", [], "Chapter One", "coffee")
    assert not _duplicate("Chapter one", [], None, "coffee")


# ------------------------------------------------------------------ the plan and its requests


def test_the_outline_keeps_the_requests_options(fake):
    """plan(): language (default en), audience, style, sections and depth all reach the outline."""
    outline = _run_plan(Planner(fake, Prompts()), PlanRequest(
        topic="The history of coffee", words=3000, sections=3, depth=1, audience="baristas", style="terse notes"))
    assert outline.language == "en"
    assert (outline.audience, outline.style) == ("baristas", "terse notes")
    assert len(outline.sections) == 3 and not any(s.children for s in outline.sections)
    nested = _run_plan(Planner(fake, Prompts()), PlanRequest(topic="The history of coffee", words=3000, depth=2,
                                                       sections=2))
    assert len(nested.sections) == 2 and all(len(s.children) >= 2 for s in nested.sections)


def test_every_planning_request_carries_the_style_audience_and_language(fake):
    """plan(): the system message of every request names the style, the audience and the language."""
    _run_plan(Planner(fake, Prompts()), PlanRequest(topic="The history of coffee", words=600, sections=2, depth=1,
                                              audience="baristas", style="terse notes", language="fr"))
    for r in fake.requests:
        system = r.messages[0].content
        assert "terse notes" in system and "baristas" in system and '"fr"' in system


def test_title_requests_are_short_single_line_and_seeded_per_round():
    """titles(): 24 tokens, one line (stop at newline), temperature 0.8, seed = request seed + round."""
    outline, backend = _plan(smart_responder, words=1200, sections=3, depth=1, seed=7)
    titles = [r for r in backend.requests if r.prefill]
    assert [r.prefill for r in titles] == ["1.", "1. Part 1 of the story\n2.",
                                          "1. Part 1 of the story\n2. Part 2 of the story\n3."]
    assert [r.sampling.seed for r in titles] == [7, 8, 9]
    for r in titles:
        s = r.sampling
        assert (s.max_new_tokens, s.stop, s.temperature, s.repetition_penalty) == (24, ("\n",), 0.8, 1.2)
        user = r.messages[-1].content
        assert "1200-word document" in user and "List 3 section titles" in user


def test_title_seeds_wrap_around_within_the_allowed_range():
    """titles(): the per-round seed wraps from MAX_SEED to 0 instead of leaving the valid range."""
    _, backend = _plan(smart_responder, words=600, sections=2, depth=1, seed=MAX_SEED)
    assert [r.sampling.seed for r in backend.requests if r.prefill] == [MAX_SEED, 0]


def test_brief_and_document_title_requests_use_the_request_seed_and_their_budgets():
    """briefs(): doc title 24 tokens, briefs 60 tokens, temperature 0.7, the request's seed, topic in prompt."""
    _, backend = _plan(smart_responder, words=600, sections=2, depth=1, seed=5)
    last = backend.batches[-1]  # the briefs batch: document title first
    assert is_title_request(last[0].messages[-1].content)
    assert [r.sampling.max_new_tokens for r in last] == [24, 80, 80]
    for r in last:
        assert (r.sampling.seed, r.sampling.temperature, r.sampling.repetition_penalty) == (5, 0.7, 1.2)
        assert "The history of coffee" in r.messages[-1].content


def test_a_subsection_brief_request_names_its_chapter():
    """briefs(): a subsection's brief prompt names its chapter; a top-level one names none."""
    _, backend = _plan(smart_responder, words=1200, sections=2, depth=2)
    briefs = [r.messages[-1].content for r in backend.batches[-1][1:]]
    top = [b for b in briefs if 'titled "Part 1 of the story"' in b][0]
    assert "in the chapter" not in top
    sub = [b for b in briefs if 'titled "Part 1 of the story detail 1"' in b][0]
    assert 'in the chapter "Part 1 of the story"' in sub


# ------------------------------------------------------------------ running short of titles


def test_the_document_may_fall_short_of_titles_by_half_at_most():
    """titles(): 2 of 4 distinct titles are enough; 1 of 4 is a PlanningError naming the document."""
    outline, _ = _plan(_titles_by_position(["Beans", "Cafes"]), words=1200, sections=4, depth=1)
    assert [s.title for s in outline.sections] == ["Beans", "Cafes"]
    with pytest.raises(PlanningError, match=r"gave 1 distinct titles for the document \(needed 4\)"):
        _plan(_titles_by_position(["Beans"]), words=1200, sections=4, depth=1)


def test_two_sections_asked_one_distinct_title_is_enough():
    """titles(): with 2 sections asked, half (one) distinct title still makes a plan."""
    outline, _ = _plan(_titles_by_position(["Beans"]), words=600, sections=2, depth=1)
    assert [s.title for s in outline.sections] == ["Beans"]


def test_a_chapter_without_any_usable_subtitle_is_written_as_one_section():
    """titles(): a chapter whose subtitles are all unusable stays undivided (measured: a 5,000-word
    plan of the embedded model failed on one such chapter) instead of failing the plan."""
    responder = _titles_by_position(["Beans", "Cafes"], subs={"Beans": [], "Cafes": ["Vienna", "London"]})
    outline, _ = _plan(responder, words=1200, sections=2, depth=2)
    assert [len(s.children) for s in outline.sections] == [0, 2]
    assert sum(leaf.words for leaf in outline.leaves()) == 1200


def test_duplicate_titles_are_resampled_a_bounded_number_of_times():
    """titles(): a list that only gets duplicates is asked n * max_attempts times, then refused."""
    backend = ScriptedBackend(_titles_by_position(["Beans"]))
    with pytest.raises(PlanningError):
        _run_plan(Planner(backend, Prompts()), PlanRequest(topic="coffee", words=1200, sections=3, depth=1,
                                                     max_attempts=2))
    assert len([r for r in backend.requests if r.prefill]) == 6


# ------------------------------------------------------------------ unusable answers


def test_document_title_markup_and_prefix_are_removed():
    """briefs(): '**Title: X**' becomes 'X'."""
    outline, _ = _plan(_titles_by_position(["Beans", "Cafes"], doc='**Title: "The Coffee Story"**'),
                       words=600, sections=2, depth=1)
    assert outline.title == "The Coffee Story"


@pytest.mark.parametrize("answer", ["", "   \n  ", "Here is a sample of your request in 82 characters max",
                                    "The Coffeethesagement's Rich History", "Coffee " * 16])
def test_an_unusable_document_title_falls_back_to_the_topic_in_title_case(answer):
    """briefs(): a blank title, one that echoes the request, has a broken word or is longer
    than 15 words gives way to the topic."""
    outline, _ = _plan(_titles_by_position(["Beans", "Cafes"], doc=answer), words=600, sections=2, depth=1)
    assert outline.title == "The History of Coffee"


def test_an_english_title_for_a_chinese_document_falls_back_to_the_topic():
    """briefs(): a Chinese document never gets an English title from the model."""
    def respond(request):
        if request.prefill:
            return [" 咖啡的起源", " 咖啡馆的兴起"][_number(request) - 1]
        if is_title_request(request.messages[-1].content):
            return "A Short History of Coffee"
        return "这一节讲述咖啡。"

    outline = _run_plan(Planner(ScriptedBackend(respond), Prompts()), PlanRequest(topic="咖啡的历史", words=600,
                                                                            sections=2, depth=1))
    assert outline.title == "咖啡的历史"


def test_a_brief_is_the_first_sentence_of_the_answer_ending_at_a_boundary_within_300_characters():
    """briefs(): only the first sentence is kept; one cut off by the token limit or too long
    ends at a clause or word boundary within 300 characters, with a full stop, never mid-word."""
    outline, _ = _plan(_titles_by_position(["Beans", "Cafes"], brief="Sure! It covers beans. Then it rambles on."),
                       words=600, sections=2, depth=1)
    assert [s.brief for s in outline.sections] == ["It covers beans."] * 2
    outline, _ = _plan(_titles_by_position(["Beans", "Cafes"], brief="coffeebean " * 50), words=600, sections=2,
                       depth=1)
    assert all(250 < len(s.brief) <= 300 and s.brief.endswith("coffeebean.") for s in outline.sections)
    cut = "It explains how coffee was first grown, roasted and traded by the ancient E"
    outline, _ = _plan(_titles_by_position(["Beans", "Cafes"], brief=cut), words=600, sections=2, depth=1)
    assert [s.brief for s in outline.sections] == ["It explains how coffee was first grown."] * 2


def test_a_blank_brief_falls_back_to_the_section_title():
    """briefs(): an empty brief answer makes the section's own title its brief."""
    outline, _ = _plan(_titles_by_position(["Beans", "Cafes"], brief="  "), words=600, sections=2, depth=1)
    assert [s.brief for s in outline.sections] == ["Beans", "Cafes"]


# ------------------------------------------------------------------ ids


def test_ids_are_unique_across_chapters():
    """assemble(): the same subtitle in three chapters gets ids x, x-2, x-3 (never a duplicate)."""
    subs = {t: ["Origins", f"More about {t}"] for t in ("Beans", "Cafes", "Trade")}
    outline, _ = _plan(_titles_by_position(["Beans", "Cafes", "Trade"], subs=subs), words=1800, sections=3,
                       depth=2)
    assert [c.id for s in outline.sections for c in s.children if c.title == "Origins"] == \
        ["origins", "origins-2", "origins-3"]
    ids = [s.id for _, s in outline.walk()]
    assert len(ids) == len(set(ids))


def test_titles_without_latin_letters_get_positional_ids():
    """assemble(): a title with no slug gets 's<i>' (chapters) or 's<i>-<j>' (subsections)."""
    def respond(request):
        if request.prefill:
            parent = chapter_asked(request.messages[-1].content)
            k = _number(request)
            return f" {parent}之{'一二三'[k - 1]}" if parent else f" 第{'一二三'[k - 1]}部分"
        return smart_responder(request)

    outline = _run_plan(Planner(ScriptedBackend(respond), Prompts()), PlanRequest(topic="咖啡的历史", words=1200,
                                                                            sections=2, depth=2))
    assert [s.id for s in outline.sections] == ["s1", "s2"]
    assert [c.id for c in outline.sections[0].children][:2] == ["s1-1", "s1-2"]


def test_long_titles_give_ids_of_at_most_32_characters_without_a_trailing_dash():
    """assemble(): an id is the title's slug cut to 32 characters, dashes trimmed."""
    long = "Abcdefghij abcdefghij abcdefghi abc"
    outline, _ = _plan(_titles_by_position([long, "Cafes"]), words=600, sections=2, depth=1)
    assert outline.sections[0].id == "abcdefghij-abcdefghij-abcdefghi"


# ------------------------------------------------------------------ refusals


def test_refusals_from_a_model_rule_read_as_one_plain_sentence():
    """PlanRequest(): a whole-request problem has no 'Value error,' prefix and no empty field name."""
    with pytest.raises(InputError) as err:
        PlanRequest(topic="coffee", words=15, sections=5)
    assert str(err.value).startswith("15 words over 5 sections leaves under 10 words")
    with pytest.raises(InputError) as err:
        PlanRequest(topic="coffee", words=0)
    assert str(err.value).startswith("words: ")


def test_a_topic_of_exactly_the_limit_is_accepted():
    """check_topic(): MAX_TOPIC_CHARS characters are allowed, one more is refused."""
    assert len(check_topic("x" * MAX_TOPIC_CHARS)) == MAX_TOPIC_CHARS
    with pytest.raises(InputError):
        check_topic("x" * (MAX_TOPIC_CHARS + 1))


def _run_plan(planner, request):
    """Planner.plan is a coroutine: run it as the sync API does."""
    import asyncio

    return asyncio.run(planner.plan(request))
