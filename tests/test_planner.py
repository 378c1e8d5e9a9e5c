import asyncio

import pytest

from longwriter.backends.fake import ScriptedBackend
from longwriter.errors import InputError, PlanningError
from longwriter.planner import PlanRequest, Planner, clean_title, shape
from longwriter.prompts import Prompts

from .conftest import chapter_asked, is_title_request, smart_responder


def test_shape_scales_with_length():
    assert shape(300, None, None) == (2, 1)
    assert shape(1200, None, None) == (5, 1)
    top, sub = shape(20000, None, None)
    assert top * sub >= 60 and 3 <= sub <= 5
    assert shape(3000, 8, 2) == (8, 2)


def test_clean_title_strips_descriptions_and_markdown():
    assert clean_title(" **The Origins of Coffee** - how it began in Ethiopia") == "The Origins of Coffee"
    assert clean_title(' "Coffee in Europe": the spread') == "Coffee in Europe"
    assert clean_title("") == ""
    long = clean_title("This is a very long sentence that goes on and on about the beans of the")
    assert len(long.split()) <= 10 and not long.endswith(" the")


def test_planner_builds_a_valid_two_level_outline(fake):
    outline = run_plan(Planner(fake, Prompts()), PlanRequest(topic="The history of coffee", words=3000))
    assert len(outline.sections) >= 3
    assert all(s.children for s in outline.sections)
    assert sum(s.words for s in outline.leaves()) == 3000
    assert len({s.id for _, s in outline.walk()}) == len(list(outline.walk()))
    assert outline.title == "A Short History of Coffee"
    assert all(s.brief for _, s in outline.walk())


def test_duplicates_are_resampled_with_a_bound():
    calls = []

    def stubborn(request):
        calls.append(request)
        return " The history of coffee"  # always the bare topic: never acceptable

    with pytest.raises(PlanningError, match="distinct titles"):
        run_plan(Planner(ScriptedBackend(stubborn), Prompts()), PlanRequest(topic="The history of coffee", words=1200))
    assert 0 < len(calls) <= 5 * 4 * 5


def test_repeated_titles_are_skipped():
    seq = iter([" Beans", " Beans", " Roasting", " beans!", " Cafes", " Trade", " Trade", " Science"])

    def repetitive(request):
        if request.prefill:
            return next(seq)
        return smart_responder(request)

    outline = run_plan(Planner(ScriptedBackend(repetitive, batch_size=1), Prompts()), 
        PlanRequest(topic="coffee", words=1200, sections=5, depth=1))
    assert [s.title for s in outline.sections] == ["Beans", "Roasting", "Cafes", "Trade", "Science"]


def test_a_chapter_with_too_few_distinct_subtitles_degrades_gracefully():
    def stuck_in_chapter_two(request):
        user = request.messages[-1].content
        if request.prefill and 'chapter titled "Part 2 of the story"' in user:
            return " Same subtitle"  # only one distinct subtitle, however often asked
        return smart_responder(request)

    outline = run_plan(Planner(ScriptedBackend(stuck_in_chapter_two), Prompts()), 
        PlanRequest(topic="The history of coffee", words=3000))
    assert not outline.sections[1].children  # collapsed into a single section
    assert all(s.children for i, s in enumerate(outline.sections) if i != 1)
    assert sum(s.words for s in outline.leaves()) == 3000


def test_subtitles_may_narrow_the_topic():
    def topical(request):
        if request.prefill and chapter_asked(request.messages[-1].content):
            k = request.prefill.count("\n") + 1
            return [" Coffee", " Coffee in Yemen", " The history", " Coffee in Java"][k - 1]
        return smart_responder(request)

    outline = run_plan(Planner(ScriptedBackend(topical, batch_size=1), Prompts()), 
        PlanRequest(topic="The history of coffee", words=1200, sections=2, depth=2))
    assert [c.title for c in outline.sections[0].children][:2] == ["Coffee", "Coffee in Yemen"]


def test_empty_and_absurd_topics_are_refused(fake):
    with pytest.raises(InputError, match="empty"):
        run_plan(Planner(fake, Prompts()), PlanRequest(topic="   ", words=1000))
    with pytest.raises(InputError, match="characters long"):
        run_plan(Planner(fake, Prompts()), PlanRequest(topic="x" * 5000, words=1000))


def test_chinese_topic_gets_chinese_language(fake):
    outline = run_plan(Planner(fake, Prompts()), PlanRequest(topic="咖啡的历史", words=1000))
    assert outline.language == "zh"


def _answers(titles: list[str], doc_title: str, brief: str):
    """A responder: the numbered title lists get ``titles`` one by one (then ``titles[-1]``),
    the document-title request ``doc_title``, every brief request ``brief``."""
    lines = iter(titles)

    def respond(request):
        if request.prefill:  # the numbered title lists
            return f" {next(lines, titles[-1])}"
        return doc_title if is_title_request(request.messages[-1].content) else brief

    return ScriptedBackend(respond)


def test_a_chinese_plan_resamples_english_titles_and_drops_a_title_prefix():
    backend = _answers(["Tea ceremonies", "茶的起源", "Tea trade", "茶马古道", "现代茶饮", "茶文化"],
                       "Title: 中国茶文化\ufffd", "这一节讲述茶的历史。")
    outline = run_plan(Planner(backend, Prompts()), PlanRequest(topic="茶文化", words=600, sections=3, depth=1))
    assert [s.title for s in outline.sections] == ["茶的起源", "茶马古道", "现代茶饮"]
    assert outline.title == "中国茶文化"


def test_a_chinese_plan_drops_latin_noise_half_characters_and_an_english_chat_brief():
    """What the 135M model once gave a Chinese plan (CI, 2026-11): a title with Latin noise and a
    long number, a section title ending in half a character, a brief that is English chat. The
    title falls back to the topic, the noise title is re-sampled, the brief becomes the title."""
    backend = _answers(["茶道 PURCELYLAND", "科第天上弢松测攪探言句以\ufffd", "茶马古道", "茶文化"],
                       "可以提到；17598624-PURCELYLAND", "I'm glad you found my explanation helpful.")
    outline = run_plan(Planner(backend, Prompts()),
                       PlanRequest(topic="写一篇关于茶文化的短文", words=300, sections=2, depth=1))
    assert [s.title for s in outline.sections] == ["科第天上弢松测攪探言句以", "茶马古道"]
    assert outline.title == "写一篇关于茶文化的短文"
    assert [s.brief for s in outline.sections] == [s.title for s in outline.sections]


def test_section_titles_that_talk_about_the_text_are_resampled():
    """Titles the embedded model gave a plan with sources (2026-12): they describe the request
    or the article, not a subject, and are re-sampled; a topic's own word is no echo."""
    backend = _answers(["The two sections title should match their respective subject matter",
                        "The article provides information about keeping beehive that covers all",
                        "Varroa mites", "Choosing the right words", "Harvesting honey", "Bees"],
                       "A short title", "It explains the hive.")
    outline = run_plan(Planner(backend, Prompts()),
                       PlanRequest(topic="Keeping bees: words of advice", words=600, sections=3, depth=1))
    assert [s.title for s in outline.sections] == ["Varroa mites", "Choosing the right words", "Harvesting honey"]


def run_plan(planner, request):
    """Planner.plan is a coroutine: run it as the sync API does."""
    return asyncio.run(planner.plan(request))
