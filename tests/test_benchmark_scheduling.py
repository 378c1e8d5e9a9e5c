"""benchmarks.scheduling compares like with like: its lock-step side (the replaced scheduler)
and longwriter's request-level scheduler send the same requests and write the same document,
lock-step sends them in rounds, and a bad option combination is refused before any model loads."""

from __future__ import annotations

import sys

import pytest

from benchmarks import scheduling
from longwriter.backends.base import BatchStats
from longwriter.backends.fake import ScriptedBackend
from longwriter.scheduler import Scheduler

from .conftest import smart_responder


def sent(backend: ScriptedBackend) -> list[tuple]:
    """Every request sent, as (seed, token limit, prompt), in a fixed order."""
    return sorted((r.sampling.seed, r.sampling.max_new_tokens, r.messages[-1].content) for r in backend.requests)


def test_both_sides_send_the_same_requests_and_write_the_same_words():
    outline = scheduling.mixed_outline(2)
    lock, level = ScriptedBackend(smart_responder), ScriptedBackend(smart_responder)
    a = scheduling.run(lock, outline, scheduling.LockStep, batch=8, seed=3)
    b = scheduling.run(level, outline, Scheduler, batch=8, seed=3)
    assert sent(lock) == sent(level) and len(lock.requests) == a["requests"] + 2 * 2  # drafts + summaries
    assert (a["words"], a["tokens"]) == (b["words"], b["tokens"]) and a["words"] > 0
    assert len(a["delays"]) == len(b["delays"]) == len(outline.leaves())


def test_lock_step_sends_one_request_per_section_in_flight_and_waits_for_the_round():
    lock = ScriptedBackend(smart_responder)
    scheduling.run(lock, scheduling.mixed_outline(3), scheduling.LockStep, batch=8)
    # 3 chapter chains of 3 sections, each chain 5 requests (3 drafts, 2 summaries): 5 rounds,
    # each holding one request from every chain
    assert [len(batch) for batch in lock.batches] == [3] * 5
    assert all(len({r.sampling.seed for r in batch}) == len(batch) for batch in lock.batches)


def test_previous_needs_an_in_process_engine(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["scheduling", "--previous", "--engine", "vllm"])
    monkeypatch.setattr(scheduling, "engine", lambda *args: pytest.fail("an engine was started"))
    with pytest.raises(SystemExit) as exit_:
        scheduling.main()
    assert exit_.value.code == 2 and "--previous" in capsys.readouterr().err


def test_waiting_beside_free_rows_counts_only_calls_that_had_room():
    calls = [BatchStats(2, 20, 3.0, longest=10, waiting=1),  # a request waited, 2 of 4 rows busy
             BatchStats(4, 40, 5.0, longest=10, waiting=3),  # full: waiting for room, not idle
             BatchStats(1, 10, 2.0, longest=10, waiting=0)]  # nothing waited
    assert scheduling.waited_share(calls, rows=4) == pytest.approx(3.0 / 10.0)
    assert scheduling.waited_share([], rows=4) == 0.0
    assert scheduling.occupancy(calls) == pytest.approx((3.0 * 2 + 5.0 * 4 + 2.0 * 1) / 10.0)
