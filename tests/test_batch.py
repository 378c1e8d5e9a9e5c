"""Batch jobs on the scripted backend: one forest on one engine, bad lines and failed documents
reported without stopping the others, each document resuming on its own."""

import asyncio
import json
import re
import threading

import pytest
from click.testing import CliRunner

from longwriter.backends.fake import ScriptedBackend
from longwriter.batch import batch, parse_job, read_jobs
from longwriter.cli import main
from longwriter.errors import InputError, Interrupted, ModelError, RequestRefused
from longwriter.pipeline import RunControl
from longwriter.planner import Planner
from longwriter.writer import WriterSettings

from .conftest import smart_responder

NO_CHECK = WriterSettings(check=False)
TOPICS = ["The history of tea", "Bees and pollination", "Lighthouses of Europe", "The Silk Road"]


def jobs(*topics, words=300):
    return [{"topic": t, "words": words} for t in topics]


def topic_of(request) -> str:
    return next((t for t in TOPICS if t in request.messages[-1].content), "")


def is_section(request) -> bool:
    return bool(re.search(r"Write about \d+ words", request.messages[-1].content))


def test_every_document_is_written_into_its_own_folder(tmp_path):
    result = batch(jobs(*TOPICS[:3]), tmp_path, backend=ScriptedBackend(smart_responder), settings=NO_CHECK)
    assert [(o.line, o.status) for o in result.outcomes] == [(1, "done"), (2, "done"), (3, "done")]
    names = ["001-the-history-of-tea", "002-bees-and-pollination", "003-lighthouses-of-europe"]
    assert sorted(result.results) == names
    for name, topic in zip(names, TOPICS):
        document = (tmp_path / name / "document.md").read_text(encoding="utf-8")
        assert document.startswith("# ") and result.results[name].outline.topic == topic
    summary = json.loads((tmp_path / "batch.json").read_text(encoding="utf-8"))
    assert [(s["name"], s["status"], s["words"] > 0) for s in summary] == [(n, "done", True) for n in names]


def test_all_documents_share_the_engine_planning_and_sections_alike(tmp_path):
    fake = ScriptedBackend(smart_responder, batch_size=16)
    batch(jobs(*TOPICS), tmp_path, backend=fake, settings=NO_CHECK)
    planning = fake.batches[0]
    assert {topic_of(r) for r in planning} == set(TOPICS)  # the four plans' title lists went out together
    mixed = [b for b in fake.batches if len({topic_of(r) for r in b if is_section(r)}) == len(TOPICS)]
    assert mixed  # some engine batch drafted sections of all four documents at once
    one_by_one = ScriptedBackend(smart_responder, batch_size=16)
    for k, topic in enumerate(TOPICS):
        batch(jobs(topic), tmp_path / f"serial{k}", backend=one_by_one, settings=NO_CHECK)
    assert len(fake.batches) < len(one_by_one.batches) / 2  # the same work in far fewer engine steps


@pytest.mark.parametrize("continuous", [True, False])
def test_a_slow_plan_holds_back_the_others_only_on_an_engine_that_runs_whole_batches(tmp_path, monkeypatch,
                                                                                     continuous):
    """A continuous engine (stepping, servers) drafts a planned document's sections while
    another is still planning; a padded one waits for every plan (its steps cannot mix stop
    strings)."""
    waiting, overlapped = {}, []

    def responder(request):
        if is_section(request) and topic_of(request) == TOPICS[0] and "bees" in waiting:
            waiting["bees"].set()
        return smart_responder(request)

    plan = Planner.plan

    async def slow_for_bees(self, request, *args):
        if request.topic == TOPICS[1]:  # bees' plan waits until tea's sections are being drafted
            waiting["bees"] = asyncio.Event()
            try:
                await asyncio.wait_for(waiting["bees"].wait(), 1.0)
                overlapped.append(True)
            except TimeoutError:
                overlapped.append(False)
        return await plan(self, request, *args)

    monkeypatch.setattr(Planner, "plan", slow_for_bees)
    fake = ScriptedBackend(responder)
    fake.continuous = continuous
    result = batch(jobs(*TOPICS[:2]), tmp_path, backend=fake, settings=NO_CHECK)
    assert overlapped == [continuous]
    assert [o.status for o in result.outcomes] == ["done", "done"]


def test_bad_lines_are_refused_in_one_line_and_the_rest_is_written(tmp_path):
    lines = [*jobs(TOPICS[0]), "not json", {"topic": "  "}, {"topic": "x", "model": "gpt2"},
             {"topic": "x", "colour": 1}, {"topic": "x", "words": 10}, {"topic": "x", "template": "nope"},
             {"topic": TOPICS[1], "name": "bees"}, {"topic": TOPICS[2], "name": "bees"}]
    parsed = [parse_job(line) if isinstance(line, str) else line for line in lines]
    result = batch(parsed, tmp_path, backend=ScriptedBackend(smart_responder), settings=NO_CHECK)
    status = {o.line: (o.status, o.error) for o in result.outcomes}
    assert status[1][0] == "done" and status[8][0] == "done"
    assert status[2] == ("refused", "line 2: not JSON (Expecting value at column 1)")
    assert "topic is empty" in status[3][1] and "share one model" in status[4][1]
    assert status[5][1] == "line 5: colour: unknown field" and "words" in status[6][1]
    assert "no template 'nope'" in status[7][1] and "name 'bees' is already line 8's" in status[9][1]
    assert all("\n" not in o.error for o in result.outcomes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["001-the-history-of-tea", "batch.json", "bees"]


def test_a_failed_document_does_not_stop_the_others(tmp_path):
    def refuses_bees(request):
        if is_section(request) and topic_of(request) == TOPICS[1]:
            raise RequestRefused("the server refused a request: prompt too long")
        return smart_responder(request)

    result = batch(jobs(*TOPICS[:3]), tmp_path, backend=ScriptedBackend(refuses_bees, batch_size=1), settings=NO_CHECK)
    assert [(o.status, o.error) for o in result.outcomes] == [
        ("done", ""), ("failed", "the server refused a request: prompt too long"), ("done", "")]
    assert not (tmp_path / "002-bees-and-pollination").exists()  # it wrote nothing: nothing is left
    assert (tmp_path / "003-lighthouses-of-europe" / "document.md").is_file()


def test_an_engine_that_cannot_be_used_stops_the_whole_batch(tmp_path):
    def down(request):
        raise ModelError("no server answered")

    with pytest.raises(ModelError):
        batch(jobs(*TOPICS[:2]), tmp_path, backend=ScriptedBackend(down, batch_size=1), settings=NO_CHECK)
    assert json.loads((tmp_path / "batch.json").read_text())[0]["status"] == "failed"


def test_each_document_resumes_on_its_own(tmp_path):
    first = batch(jobs(*TOPICS[:2]), tmp_path, backend=ScriptedBackend(smart_responder), settings=NO_CHECK)
    bees = tmp_path / "002-bees-and-pollination"
    section = sorted((bees / "sections").iterdir())[0]
    section.unlink()
    again = ScriptedBackend(smart_responder)
    second = batch(jobs(*TOPICS[:2]), tmp_path, backend=again, settings=NO_CHECK)
    drafted = [r for r in again.requests if is_section(r)]
    assert drafted and {topic_of(r) for r in drafted} == {TOPICS[1]}  # tea was finished: nothing redone
    assert not [r for r in again.requests if r.prefill.strip().endswith("1.")]  # outlines were reused
    assert second.results["001-the-history-of-tea"].document == first.results["001-the-history-of-tea"].document
    assert section.is_file()


def test_a_stop_saves_finished_sections_and_resumes(tmp_path):
    control, seen = RunControl(), []

    def stops_midway(request):
        if is_section(request):
            seen.append(request)
            if len(seen) == 3:
                threading.Timer(0, control.stop).start()
        return smart_responder(request)

    with pytest.raises(Interrupted):
        batch(jobs(*TOPICS[:2], words=900), tmp_path, backend=ScriptedBackend(stops_midway, batch_size=1),
              settings=NO_CHECK, control=control)
    saved = list(tmp_path.glob("*/sections/*.md"))
    assert saved
    result = batch(jobs(*TOPICS[:2], words=900), tmp_path, backend=ScriptedBackend(smart_responder), settings=NO_CHECK)
    assert [o.status for o in result.outcomes] == ["done", "done"]
    assert sum(r.report.resumed_sections for r in result.results.values()) == len(saved)


def test_a_lines_own_options_override_the_batchs(tmp_path):
    fake = ScriptedBackend(smart_responder)
    batch([{"topic": TOPICS[0], "words": 200, "temperature": 0.3, "seed": 7}, *jobs(TOPICS[1], words=200)], tmp_path,
          backend=fake, settings=WriterSettings(check=False, temperature=0.9))
    temps = {(topic_of(r), r.sampling.temperature) for r in fake.requests if is_section(r)}
    assert temps == {(TOPICS[0], 0.3), (TOPICS[1], 0.9)}


def test_the_jobs_file_is_read_with_one_line_errors(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"topic": "tea"}\n\n[1]\n', encoding="utf-8")
    assert [(n, type(j).__name__) for n, j in read_jobs(path)] == [(1, "BatchJob"), (3, "str")]
    with pytest.raises(InputError, match="no such file"):
        read_jobs(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n \n")
    with pytest.raises(InputError, match="has no jobs"):
        read_jobs(tmp_path / "empty.jsonl")
    (tmp_path / "hostile.jsonl").write_text('{"topic": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
                                            '{"topic": "x", "words": ' + "9" * 5000 + "}\n", encoding="utf-8")
    assert [j for _, j in read_jobs(tmp_path / "hostile.jsonl")] == \
        ["not usable JSON (nested too deeply, or a number too long)"] * 2
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe{")
    with pytest.raises(InputError, match="cannot read"):
        read_jobs(tmp_path / "binary.jsonl")


def test_the_batch_command_refuses_a_bad_file_before_any_model_loads(tmp_path):
    missing = CliRunner().invoke(main, ["batch", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 5 and "no such file" in missing.output
    assert not (tmp_path / "o").exists()


def test_a_step_with_free_rows_waits_for_requests_announced_as_coming():
    """The padded engine's gather: a rewrite whose check is still running joins the next step
    instead of leaving it to run half empty (and costing a whole step of its own)."""
    import asyncio

    from longwriter.backends.base import ChatRequest, Completion, Message, Sampling
    from longwriter.backends.batching import DynamicBatcher

    def make(gather):
        steps = []
        coming = {"n": 1}

        def run(requests):
            steps.append([r.messages[0].content for r in requests])
            return [Completion(text="ok", prompt_tokens=1, completion_tokens=1, finish_reason="stop") for _ in requests]

        batcher = DynamicBatcher(run, lambda: 4, threaded=False, gather=gather, upcoming=lambda: coming["n"])
        batcher._last_step = 10.0  # as after a long step: up to 2.5 s of waiting is worth it

        async def scenario():
            request = lambda text: ChatRequest(messages=[Message(role="user", content=text)], sampling=Sampling())

            async def later():
                await asyncio.sleep(0.3)  # its check ends a moment after the first request arrives
                coming["n"] = 0
                return await batcher.submit(request("second"))

            await asyncio.gather(batcher.submit(request("first")), later())

        asyncio.run(scenario())
        return steps

    assert make(gather=True) == [["first", "second"]]
    assert make(gather=False) == [["first"], ["second"]]


def test_the_checker_runs_where_the_backend_says_and_is_announced_as_upcoming(tmp_path):
    """Sections in their checks count as upcoming requests, and the checks run through the
    backend's run_cpu (the in-process engine's own thread on CPU)."""
    from longwriter.pipeline import expand

    from .conftest import make_outline

    class Recording(ScriptedBackend):
        def __init__(self):
            super().__init__(smart_responder)
            self.cpu_calls, self.seen_upcoming = 0, []

        async def run_cpu(self, fn):
            self.cpu_calls += 1
            self.seen_upcoming.append(self.upcoming())
            return await super().run_cpu(fn)

    from longwriter.backends.embeddings import CharNgramEmbedder
    from longwriter.checker import Checker

    backend = Recording()
    checker = Checker(CharNgramEmbedder(), CharNgramEmbedder())  # real scoring, no model to load
    expand(make_outline(2, 2, 800), tmp_path, backend=backend, checker=checker)
    assert backend.cpu_calls >= 4 and all(n >= 1 for n in backend.seen_upcoming)
    assert backend.upcoming() == 0  # reset when the run ends
