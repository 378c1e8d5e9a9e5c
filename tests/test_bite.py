"""Writer, checker wiring and scheduler behaviours that a mutation pass showed no other fast
test would notice, on the scripted backend."""

import re

import pytest

from longwriter.backends.fake import ScriptedBackend
from longwriter.errors import Interrupted
from longwriter.pipeline import Silent, expand
from longwriter.writer import WriterSettings

from .conftest import make_outline, prose, smart_responder

NO_CHECK = WriterSettings(check=False)
REVIEWER = "judged_off"


def section_of(request) -> str:
    """The section number a section or continuation request writes ('' for other requests)."""
    m = re.search(r'Now write section (\S+) "', request.messages[-1].content)
    return m.group(1) if m else ""


def is_judge(request) -> bool:
    return "Answer yes or no" in request.messages[-1].content


@pytest.mark.parametrize("verdict", ["yes", "no"])
def test_the_judges_verdict_decides(checker, tmp_path, verdict):
    """Kills: the judge's yes/no verdict inverted (or ignored)."""
    backend = ScriptedBackend(lambda r: verdict if is_judge(r) else smart_responder(r))
    result = expand(make_outline(1, 1, 200), tmp_path, backend=backend, checker=checker,
                    settings=WriterSettings(judge=True, max_attempts=2))
    section = result.report.sections[0]
    assert sum(map(is_judge, backend.requests)) == section.attempts
    if verdict == "no":
        assert section.attempts == 2 and section.attempt_scores[0].judge is False
        assert REVIEWER in section.attempt_scores[0].problems
    else:
        assert section.attempts == 1 and section.scores.judge is True and section.scores.passed


@pytest.mark.parametrize("avoid_retelling", [True, False])
def test_a_copy_is_rewritten_avoiding_the_section_it_copied(checker, tmp_path, avoid_retelling):
    """Kills: WriterSettings.avoid_retelling ignored (always or never avoiding)."""
    drafts = []

    def copier(request):
        if section_of(request) == "2" and not request.prefill:
            drafts.append(request)
            return prose(200) if len(drafts) == 1 else prose(200, seed="kettles and cups")
        return prose(200) if section_of(request) == "1" and not request.prefill else smart_responder(request)

    result = expand(make_outline(2, 1, 400), tmp_path, backend=ScriptedBackend(copier), checker=checker,
                    policy="serial", settings=WriterSettings(avoid_retelling=avoid_retelling))
    first = result.report.sections[0]
    assert len(drafts) == 2 and drafts[0].avoid == ""
    assert 'retold what the section "Chapter 1"' in drafts[1].messages[-1].content
    assert drafts[1].avoid == (first.text if avoid_retelling else "")


@pytest.mark.parametrize("limit", [1, 5])
def test_continuations_stop_at_max_continuations(tmp_path, limit):
    """Kills: max_continuations ignored (a fixed count, or continuing until long enough)."""
    short = ScriptedBackend(lambda r: prose(10, seed=r.prefill) if section_of(r) else smart_responder(r))
    result = expand(make_outline(2, 1, 400), tmp_path, backend=short, policy="independent",
                    settings=WriterSettings(check=False, max_continuations=limit))
    for number, section in zip("12", result.report.sections):
        asked = [r for r in short.requests if section_of(r) == number]
        assert [bool(r.prefill) for r in asked] == [False] + [True] * limit
        assert section.continuations == limit


def test_ready_sections_are_batched_in_document_order(tmp_path):
    """Kills: the scheduler's priority reversed (later sections served first)."""
    backend = ScriptedBackend(smart_responder)
    expand(make_outline(6, 1, 600), tmp_path, backend=backend, policy="independent", settings=NO_CHECK,
           concurrency=2)
    assert [[section_of(r) for r in batch] for batch in backend.batches] == [["1", "2"], ["3", "4"], ["5", "6"]]


class Recorder(Silent):
    def __init__(self) -> None:
        self.stats = []

    def batch(self, stats) -> None:
        self.stats.append(stats)


class KeepsCompletions(ScriptedBackend):
    def __init__(self, responder) -> None:
        super().__init__(responder, batch_size=3)
        self.outputs = []

    def _run(self, requests):
        self.outputs.append(super()._run(requests))
        return self.outputs[-1]


def test_batch_statistics_describe_each_generate_call(tmp_path):
    """Kills: BatchStats zeroed or not matching the batch (size, completion tokens)."""
    backend, progress = KeepsCompletions(smart_responder), Recorder()
    expand(make_outline(2, 3, 900), tmp_path, backend=backend, settings=NO_CHECK, progress=progress)
    assert [s.size for s in progress.stats] == [len(b) for b in backend.batches]
    assert [s.completion_tokens for s in progress.stats] == [sum(c.completion_tokens for c in out)
                                                             for out in backend.outputs]
    assert len(progress.stats) >= 4 and all(s.seconds >= 0 for s in progress.stats)


def test_each_section_gets_its_own_completion(tmp_path):
    """Kills: completions mapped to the wrong section (a batch's results swapped or shifted)."""

    def echo_title(request):
        title = re.search(r'Now write section \S+ "([^"]+)"', request.messages[-1].content)
        if title and not request.prefill:
            return f"This is {title.group(1)} speaking. " + smart_responder(request)
        return smart_responder(request)

    backend = ScriptedBackend(echo_title)
    result = expand(make_outline(4, 1, 800), tmp_path, backend=backend, policy="independent", settings=NO_CHECK)
    assert len(backend.batches[0]) == 4  # all four sections in one generate call
    for k, section in enumerate(result.report.sections, start=1):
        assert re.findall(r"This is Chapter \d speaking", section.text) == [f"This is Chapter {k} speaking"]


def test_backend_cancelled_mid_run_interrupts_and_keeps_finished_sections(tmp_path):
    """Kills: the scheduler ignoring backend.cancelled (before or after a generate call).
    Replaces test_store.py::test_cancelled_backend_interrupts, which stopped via should_stop."""
    seen = []

    def cancel_on_second_summary(request):
        seen.append(request)
        if "summarize" in request.messages[-1].content.lower() and sum(
                "summarize" in r.messages[-1].content.lower() for r in seen) == 2:
            backend.cancel()  # the user presses Ctrl-C while section 2's summary is generated
        return smart_responder(request)

    backend = ScriptedBackend(cancel_on_second_summary)
    outline = make_outline(4, 1, 800)
    with pytest.raises(Interrupted):
        expand(outline, tmp_path, backend=backend, policy="serial", settings=NO_CHECK)  # default should_stop
    assert len(seen) == 4  # draft 1, summary 1, draft 2, summary 2: nothing after the cancel
    # Section 1 was saved; section 2, whose last request was cut short, was not.
    result = expand(outline, tmp_path, backend=ScriptedBackend(smart_responder), policy="serial",
                    settings=NO_CHECK)
    assert result.report.resumed_sections == 1


def test_backend_cancelled_between_batches_starts_no_new_generate_call(tmp_path):
    """Kills: the scheduler checking backend.cancelled only after a generate call (a Ctrl-C
    while a finished section is saved would still start the next batch)."""
    backend = ScriptedBackend(smart_responder)

    class CancelOnFirstSection(Silent):
        def section(self, result) -> None:
            backend.cancel()

    with pytest.raises(Interrupted):
        expand(make_outline(3, 1, 600), tmp_path, backend=backend, policy="serial", settings=NO_CHECK,
               progress=CancelOnFirstSection())
    assert len(backend.requests) == 2  # section 1's draft and summary; nothing after the cancel


def test_an_on_topic_chinese_section_passes_the_relevance_checks(checker):
    """The character-n-gram embedder scores an on-topic Chinese paragraph ~0.09 against its
    topic: it has its own relevance floor (min_ngram_relevance), not MiniLM's 0.30, which
    judged every Chinese section off-topic and rewrote it."""
    from longwriter.length import count_words
    from longwriter.writing.ratio import SAMPLES as _SAMPLES

    text = _SAMPLES["zh"]  # coffee reaching Europe, its coffeehouses and daily life
    s = checker.score(text, topic="咖啡的历史", title="咖啡传入欧洲", brief="咖啡如何传入欧洲并改变日常生活",
                      budget=count_words(text), accepted={})
    assert s.passed, s.problems
