"""The checker on real embeddings (all-MiniLM-L6-v2), and rewrites driven by it."""

import pytest

from longwriter.backends.embeddings import CharNgramEmbedder
from longwriter.backends.fake import ScriptedBackend
from longwriter.checker import Scores, duplicate_sentences, repetition, shared_ngrams
from longwriter.pipeline import expand
from longwriter.writer import WriterSettings

from .conftest import TOPIC, make_outline, prose, smart_responder

OFF_TOPIC = ("The offside rule in football says a player is offside when nearer to the goal line than the ball "
             "and the second-last defender. Referees and their assistants judge it in every match, and video "
             "review now checks close calls. Strikers time their runs to beat the defensive line. Goalkeepers "
             "organise the wall at free kicks, and coaches drill pressing patterns in training all week.")


def test_repetition_measures():
    looping = "The bean is roasted. " * 20
    assert repetition(looping) > 0.8
    assert duplicate_sentences(looping) > 0.9
    assert repetition(prose(200)) < 0.2
    assert shared_ngrams("a b c d e f", ["x a b c d e f y"]) == 1.0
    assert shared_ngrams("a b c d e f", []) == 0.0


def test_off_topic_and_duplicate_sections_are_caught(checker):
    good = prose(150)
    on = checker.score(good, topic=TOPIC, title="Coffee ports", brief="how coffee trade grew in ports",
                       budget=150, accepted={})
    assert on.passed, on.problems
    off = checker.score(OFF_TOPIC, topic=TOPIC, title="Coffee ports", brief="how coffee trade grew in ports",
                        budget=150, accepted={})
    assert off.problems[0] == "off_topic"
    dup = checker.score(good, topic=TOPIC, title="Coffee ports", brief="how coffee trade grew in ports",
                        budget=150, accepted={"Coffee in Venice": good})
    assert dup.closest == "Coffee in Venice"
    assert "retold" in dup.problems
    loop = checker.score("Coffee is a drink. " * 40, topic=TOPIC, title="Coffee", brief="coffee", budget=160,
                         accepted={})
    assert "looped" in loop.problems


def test_problem_codes_become_the_feedback_template_s_sentences():
    from longwriter.context import SectionContext
    from longwriter.prompts import Prompts
    from longwriter.writing.prompts import SectionPrompts


    prompts = SectionPrompts(make_outline(), Prompts(), lambda text: len(text.split()))
    ctx = SectionContext(id="c1s1", number="1.1", section_title="Coffee ports", chapter="", brief="how trade grew",
                         words=150, outline=[])
    codes = ["off_topic", "off_brief", "retold", "looped", "too_short", "judged_off"]
    scores = Scores(topic_relevance=0, brief_relevance=0, redundancy=1, shared_ngrams=1, repetition=1,
                    length_ratio=0.1, closest="Coffee in Venice", problems=codes)
    lines = prompts.feedback(scores, ctx)
    assert len(lines) == len(codes)
    assert TOPIC in lines[0] and '"Coffee ports"' in lines[1]
    assert 'retold what the section "Coffee in Venice"' in lines[2] and lines[2].endswith("how trade grew")
    assert "own sentences" in lines[3] and "too short" in lines[4] and "reviewer" in lines[5]
    assert prompts.feedback(scores.model_copy(update={"problems": ["looped"]}), ctx) == [lines[3]]


def test_planted_bad_sections_are_rewritten(checker, tmp_path):
    """The first draft of section 1.2 is off-topic and of 2.1 a copy of 1.1: both get rewritten."""
    seen: dict[str, int] = {}

    def planted(request):
        user = request.messages[-1].content
        for sid, bad in (("1.2", OFF_TOPIC), ("2.1", prose(200))):
            if f'section {sid} "' in user and not request.prefill:
                seen[sid] = seen.get(sid, 0) + 1
                if seen[sid] == 1:
                    return bad
                return prose(200, seed=f"coffee era {sid}")
        if 'section 1.1 "' in user and not request.prefill:
            return prose(200)
        return smart_responder(request)

    backend = ScriptedBackend(planted)
    # serial: each section is checked after the ones before it are accepted (sections in flight
    # at the same time cannot see each other)
    result = expand(make_outline(2, 2, 800), tmp_path, backend=backend, checker=checker, policy="serial",
                    settings=WriterSettings(max_attempts=3))
    by_id = {s.id: s for s in result.report.sections}
    assert by_id["c1s2"].attempts >= 2 and "offside" not in by_id["c1s2"].text
    assert by_id["c2s1"].attempts >= 2 and by_id["c2s1"].text != by_id["c1s1"].text
    assert by_id["c1s2"].attempt_scores[0].problems
    rewrite = [r for r in backend.requests if "An earlier draft of this section was rejected" in r.messages[-1].content]
    # Neither draft looped, so the penalty stays (raising it also penalises the topic's words).
    assert rewrite and {r.sampling.repetition_penalty for r in rewrite} == {1.15}
    assert len({r.sampling.seed for r in rewrite}) == len(rewrite)
    # The copy's rewrite is told which section it retold, and that section's words are penalised.
    redo = [r for r in rewrite if 'section 2.1 "' in r.messages[-1].content]
    assert 'retold what the section "Coffee part 1.1"' in redo[0].messages[-1].content
    assert redo[0].avoid == by_id["c1s1"].text


def test_chinese_falls_back_to_character_ngrams(checker):
    """A near-copy of an accepted Chinese section is found as the closest and most redundant;
    an unrelated one (listed first, so ties or a constant embedding would pick it) is not."""
    zh = "咖啡起源于埃塞俄比亚，后来传到也门和阿拉伯半岛。商人把咖啡豆带到世界各地的港口。" * 3
    near_copy = zh.replace("商人", "水手").replace("港口", "城市")
    football = "足球比赛有两支球队，每队十一名球员。裁判根据越位规则判罚，守门员可以用手接球。" * 3
    assert isinstance(checker.embedder_for(zh), CharNgramEmbedder)
    s = checker.score(zh, topic="咖啡的历史", title="咖啡的起源", brief="咖啡如何起源", budget=len(zh),
                      accepted={"足球": football, "起源": near_copy})
    assert s.closest == "起源" and s.redundancy > 0.7
    alone = checker.score(zh, topic="咖啡的历史", title="咖啡的起源", brief="咖啡如何起源", budget=len(zh),
                          accepted={"足球": football})
    assert alone.redundancy < 0.3 and alone.closest == "足球"


def test_a_passing_rewrite_beats_a_failing_draft_that_scores_higher():
    from longwriter.checker import Scores
    from longwriter.writing.drafting import Draft as _Draft
    from longwriter.writing.revision import best_attempt

    def scores(redundancy, relevance, problems):
        return Scores(topic_relevance=relevance, brief_relevance=relevance, redundancy=redundancy, shared_ngrams=0,
                      repetition=0, length_ratio=1.0, problems=problems)

    copy = (_Draft(text="copy"), scores(0.75, 0.9, ["retold"]))
    fresh = (_Draft(text="fresh"), scores(0.50, 0.5, []))
    assert best_attempt([copy, fresh])[0].text == "fresh"  # quality alone would keep the copy
    worse = (_Draft(text="worse"), scores(0.80, 0.4, ["retold"]))
    assert best_attempt([copy, worse])[0].text == "copy"  # neither passes: the better scores


def test_rewrites_and_drafts_share_one_generate_call():
    """Requests that differ only in per-row options share a group; different stops do not
    (the backend's split by this key is tested in test_backend_logic)."""
    from longwriter.backends.base import Sampling

    draft = Sampling(seed=1, repetition_penalty=1.15, max_new_tokens=300, min_new_tokens=200)
    rewrite = Sampling(seed=2, repetition_penalty=1.25, temperature=0.9, top_p=0.8, top_k=20, max_new_tokens=90)
    judge = Sampling(max_new_tokens=3, temperature=0.0)
    assert draft.group_key() == rewrite.group_key() == judge.group_key()
    assert draft.group_key() != Sampling(stop=("\n",)).group_key()
    assert Sampling(stop=("\n",)).group_key() != Sampling(stop=("END",)).group_key()


def test_a_looping_draft_is_rewritten_with_a_higher_penalty_and_nothing_to_avoid(checker, tmp_path):
    calls = []

    def looping(request):
        user = request.messages[-1].content
        if 'section 2 "' in user and not request.prefill:
            calls.append(request)
            return "The kettle sings at dawn. " * 50 if len(calls) == 1 else prose(200, seed="kettles")
        return smart_responder(request)

    backend = ScriptedBackend(looping)
    result = expand(make_outline(2, 1, 400), tmp_path, backend=backend, checker=checker, policy="serial")
    second = {s.id: s for s in result.report.sections}["c2"]
    assert second.attempts == 2 and "kettle sings" not in second.text
    assert second.attempt_scores[0].repetition > 0.8 and second.attempt_scores[0].redundancy < 0.7
    assert calls[1].sampling.repetition_penalty == pytest.approx(1.25) and calls[1].avoid == ""
