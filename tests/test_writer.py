"""Writer and scheduler logic on the scripted backend: batching, continuation, trimming."""

import re

import pytest

from longwriter.backends.fake import ScriptedBackend
from longwriter.length import count_words
from longwriter.pipeline import expand
from longwriter.writer import WriterSettings, clean_section_text

from .conftest import make_outline, prose, smart_responder

NO_CHECK = WriterSettings(check=False)


def test_ready_sections_share_one_batch(fake, tmp_path):
    expand(make_outline(4, 2, 800), tmp_path, backend=fake, policy="chapter", settings=NO_CHECK)
    first = fake.batches[0]
    assert len(first) == 4  # the first section of every chapter, together
    assert all("Write about" in r.messages[-1].content for r in first)


def test_serial_policy_runs_one_section_at_a_time(fake, tmp_path):
    expand(make_outline(2, 2, 400), tmp_path, backend=fake, policy="serial", settings=NO_CHECK)
    assert max(len(b) for b in fake.batches) == 1


def test_batch_size_caps_each_call(fake, tmp_path):
    expand(make_outline(6, 1, 600), tmp_path, backend=fake, policy="independent", settings=NO_CHECK,
           concurrency=4)
    assert max(len(b) for b in fake.batches) == 4


def test_dependants_see_summary_and_tail(fake, tmp_path):
    expand(make_outline(1, 2, 400), tmp_path, backend=fake, policy="chapter", settings=NO_CHECK)
    second = [r for r in fake.requests if 'section 1.2 "Coffee part 1.2"' in r.messages[-1].content][0]
    text = second.messages[-1].content
    assert "Summary of the earlier sections: Coffee spread from Ethiopia" in text
    assert "The previous section ends:" in text


def test_short_sections_are_continued(tmp_path):
    calls = []

    def terse(request):
        calls.append(request)
        return prose(40) if "Write about" in request.messages[-1].content else smart_responder(request)

    backend = ScriptedBackend(terse)
    result = expand(make_outline(1, 1, 200), tmp_path, backend=backend, settings=NO_CHECK)
    section = result.report.sections[0]
    assert section.continuations >= 2
    assert [r for r in calls if r.prefill]  # continuation requests carry the tail as prefill
    assert section.words >= 200 * 0.85 - 40


def test_long_sections_are_trimmed_at_a_sentence(tmp_path):
    backend = ScriptedBackend(lambda r: prose(600) if "Write about" in r.messages[-1].content else smart_responder(r))
    result = expand(make_outline(1, 1, 200), tmp_path, backend=backend, settings=NO_CHECK)
    text = result.report.sections[0].text
    assert count_words(text) <= 200 * 1.15
    assert text.endswith(".")


def test_clean_section_text_drops_headings_and_title():
    raw = "## Coffee in Europe\nCoffee in Europe: It arrived in Venice.\n\n\n\nThen London."
    assert clean_section_text(raw, "Coffee in Europe") == "It arrived in Venice.\n\nThen London."


def test_fixed_tokens_sets_min_equal_max(fake, tmp_path):
    expand(make_outline(1, 2, 300), tmp_path, backend=fake, settings=WriterSettings(check=False, fixed_tokens=32))
    assert all(r.sampling.min_new_tokens == r.sampling.max_new_tokens == 32 for r in fake.requests)


def test_document_headings_follow_outline(fake, tmp_path):
    outline = make_outline(2, 2, 400)
    result = expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    headings = re.findall(r"^(#+) (.+)$", result.document, re.M)
    assert headings[0] == ("#", "Coffee")
    assert [h[1] for h in headings[1:]] == ["1 Chapter 1", "1.1 Coffee part 1.1", "1.2 Coffee part 1.2",
                                            "2 Chapter 2", "2.1 Coffee part 2.1", "2.2 Coffee part 2.2"]
    assert [len(h[0]) for h in headings[1:]] == [2, 3, 3, 2, 3, 3]


def test_tokens_per_word_is_learned_from_a_sections_own_output():
    """A model that spends 3 tokens per word: the section's ratio moves towards 3, so its
    continuations ask for enough tokens."""
    from longwriter.writing.ratio import TokenRatio

    ratio = TokenRatio(prior=1.3)
    ratio.observe(1200, prose(400))
    assert 1.3 < ratio.value < 3.0
    assert ratio.value > (1.3 + 3.0) / 2  # 400 observed words outweigh the 200-word prior


def test_a_sections_requests_do_not_depend_on_which_sections_finished_first(tmp_path):
    """Same outline, one run with sections in flight together and one strictly serial: every
    section's first request asks for the same number of tokens."""

    def first_requests(policy, concurrency, out):
        backend = ScriptedBackend(smart_responder)
        expand(make_outline(2, 3, 1500), out, backend=backend, settings=NO_CHECK, policy=policy,
               concurrency=concurrency)
        found = {}
        for r in backend.requests:
            m = re.search(r'Now write section ([\d.]+)', r.messages[-1].content)
            if m and not r.prefill:
                found.setdefault(m.group(1), r.sampling.max_new_tokens)
        return found

    assert first_requests("independent", 8, tmp_path / "a") == first_requests("serial", 1, tmp_path / "b")


def test_sampling_options_from_the_cli_reach_every_section_request(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import longwriter.pipeline as pipeline
    from longwriter.cli import main
    from longwriter.outline import dump_outline

    fake = ScriptedBackend(smart_responder)
    monkeypatch.setattr(pipeline, "load_backend", lambda *a, **k: fake)
    path = tmp_path / "outline.yaml"
    path.write_text(dump_outline(make_outline(2, 2, 800)), encoding="utf-8")
    result = CliRunner().invoke(main, ["expand", str(path), "--out", str(tmp_path / "run"), "--no-check",
                                       "--temperature", "0.3", "--repetition-penalty", "1.0"])
    assert result.exit_code == 0, result.output
    sections = [r.sampling for r in fake.requests if "Write about" in r.messages[-1].content and not r.prefill]
    assert len(sections) == 4 and {(s.temperature, s.repetition_penalty) for s in sections} == {(0.3, 1.0)}
    assert len({s.seed for s in sections}) == 4  # each section draws from its own seed


@pytest.mark.parametrize("cut_share", [6, 2])  # the cut-off sentence: a sixth, or half, of the budget
def test_an_unfinished_last_sentence_does_not_count_towards_the_length_a_draft_reached(tmp_path, cut_share):
    """A draft at 95% (or 130%) of its budget whose last part is a sentence the token limit cut
    off: that sentence will be dropped, so the draft is short (80%) and is continued, not left
    short (and the continuation asks for the words really missing: CI once crashed asking for
    -35 tokens)."""
    asked = {}

    def cut_off(request):
        user = request.messages[-1].content
        if request.prefill:
            return prose(asked["w"] // 5)
        m = re.search(r"Write about (\d+) words", user)
        if not m:
            return smart_responder(request)
        asked["w"] = w = int(m.group(1))
        return prose(w * 4 // 5) + " " + "and the traders of the coast " * (w // cut_share // 6)

    result = expand(make_outline(1, 1, 200), tmp_path, backend=ScriptedBackend(cut_off), settings=NO_CHECK)
    section = result.report.sections[0]
    assert section.continuations == 1
    assert section.words >= 0.9 * asked["w"]


def test_a_continuation_of_symbols_only_is_drawn_again_within_the_bound(tmp_path):
    """A small model's Chinese sometimes degenerates into punctuation ("！！！！"): that
    continuation adds no words, and the next one is drawn with another seed instead of the
    section being left short (before, the first such reply ended the continuations)."""
    from longwriter.backends.fake import ScriptedBackend
    from longwriter.pipeline import expand

    from .conftest import make_outline, prose, smart_responder

    seeds = []

    def noisy(request):
        if request.prefill:  # a continuation
            seeds.append(request.sampling.seed)
            return " ！！！！！！" if len(seeds) == 1 else " " + prose(200, "more")
        if "Write about" in request.messages[-1].content:
            return prose(40)  # far short of the budget
        return smart_responder(request)

    result = expand(make_outline(1, 1, 200), tmp_path, backend=ScriptedBackend(noisy),
                    settings=WriterSettings(check=False))
    section = result.report.sections[0]
    assert len(seeds) == 2 and seeds[0] != seeds[1]
    assert section.continuations == 2 and section.words >= 0.9 * section.budget - 5
