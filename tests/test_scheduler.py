"""Request-level scheduling on asyncio: each section's next request goes out the moment its
previous one returns, dependants start the moment their dependencies finish, the number of
requests in flight stays within the bound, and a stop cancels everything in flight."""

from __future__ import annotations

import asyncio
import re

import pytest

from longwriter.backends.base import Backend, ChatRequest, Completion
from longwriter.errors import Interrupted
from longwriter.pipeline import RunControl, Silent, aexpand, expand
from longwriter.writer import WriterSettings

from .conftest import make_outline, smart_responder

NO_CHECK = WriterSettings(check=False)


class TimedBackend(Backend):
    """An engine whose requests take ``seconds(request)`` of (event-loop) time, each on its own:
    it records when each request started and ended, and the most in flight at once."""

    name = "timed"

    def __init__(self, seconds, concurrency: int = 8) -> None:
        super().__init__()
        self.seconds, self.concurrency = seconds, concurrency
        self.log: list[tuple[str, float, float]] = []
        self.in_flight = self.most_in_flight = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def complete(self, request: ChatRequest) -> Completion:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            await asyncio.sleep(self.seconds(request))
        finally:
            self.in_flight -= 1
        self.log.append((label(request), start, loop.time()))
        if self.cancelled:
            return Completion(text="", prompt_tokens=0, completion_tokens=0, finish_reason="cancelled")
        text = smart_responder(request)
        return Completion(text=text, prompt_tokens=1, completion_tokens=len(text.split()), finish_reason="stop")


def label(request: ChatRequest) -> str:
    """'draft 1.2', 'summary', 'more 1.2' for a request."""
    user = request.messages[-1].content
    number = re.search(r"Now write section ([\d.]+)", user)
    if number:
        return f"{'more' if request.prefill else 'draft'} {number.group(1)}"
    return "summary" if "summarize" in user.lower() else "other"


def test_a_finished_sections_dependant_starts_while_long_requests_still_run(tmp_path):
    """Chapter 1's sections are quick, chapter 2's first draft is slow: section 1.2 starts (and
    finishes) long before the slow draft returns; lock-step would have held it back."""
    slow = lambda r: 0.6 if label(r) == "draft 2.1" else 0.01  # noqa: E731
    backend = TimedBackend(slow)
    expand(make_outline(2, 2, 800), tmp_path, backend=backend, settings=NO_CHECK, policy="chapter")
    times = {name: (start, end) for name, start, end in backend.log}
    assert times["draft 1.2"][0] < times["draft 2.1"][1] - 0.4
    assert times["draft 1.2"][1] < times["draft 2.1"][1]


@pytest.mark.parametrize("bound", [1, 2, 3])
def test_requests_in_flight_never_exceed_the_bound(tmp_path, bound):
    backend = TimedBackend(lambda r: 0.005)
    expand(make_outline(6, 1, 1200), tmp_path, backend=backend, settings=NO_CHECK, policy="independent",
           concurrency=bound)
    assert backend.most_in_flight == bound


def test_the_engines_own_concurrency_is_the_default_bound(tmp_path):
    backend = TimedBackend(lambda r: 0.005, concurrency=4)
    expand(make_outline(8, 1, 1600), tmp_path, backend=backend, settings=NO_CHECK, policy="independent")
    assert backend.most_in_flight == 4


def test_sections_start_in_document_order_when_the_bound_is_reached(tmp_path):
    backend = TimedBackend(lambda r: 0.005)
    expand(make_outline(6, 1, 1200), tmp_path, backend=backend, settings=NO_CHECK, policy="independent",
           concurrency=2)
    drafts = [name for name, _, _ in sorted(backend.log, key=lambda x: x[1]) if name.startswith("draft")]
    assert drafts == [f"draft {i}" for i in range(1, 7)]


def test_a_stop_cancels_everything_in_flight_and_keeps_finished_sections(tmp_path):
    control = RunControl()
    backend = TimedBackend(lambda r: 0.3 if label(r) == "draft 2" else 0.01)

    class StopWhenOneIsDone(Silent):
        def section(self, result):
            control.stop()

    with pytest.raises(Interrupted):
        expand(make_outline(2, 1, 400), tmp_path, backend=backend, settings=NO_CHECK, policy="independent",
               control=control, progress=StopWhenOneIsDone())
    assert [p.name for p in (tmp_path / "sections").iterdir()] == ["c1.md"]
    resumed = expand(make_outline(2, 1, 400), tmp_path, backend=TimedBackend(lambda r: 0.0), settings=NO_CHECK,
                     policy="independent")
    assert resumed.report.resumed_sections == 1


def test_the_async_api_runs_inside_a_service_loop(tmp_path):
    async def service():
        return await aexpand(make_outline(1, 2, 400), tmp_path, backend=TimedBackend(lambda r: 0.0), settings=NO_CHECK)

    result = asyncio.run(service())
    assert len(result.report.sections) == 2


def test_the_sync_api_inside_a_running_loop_says_what_to_use(tmp_path):
    async def wrong():
        expand(make_outline(1, 2, 400), tmp_path, backend=TimedBackend(lambda r: 0.0), settings=NO_CHECK)

    with pytest.raises(RuntimeError, match="await aplan/aexpand/adraft"):
        asyncio.run(wrong())


def test_the_batcher_skips_requests_cancelled_while_waiting():
    """A request whose caller gave up (its section was cancelled) never reaches the engine,
    and the engine keeps serving the others."""
    from longwriter.backends.base import Message, Sampling
    from longwriter.backends.fake import ScriptedBackend

    backend = ScriptedBackend(lambda r: "ok", batch_size=1)

    def ask(text):
        return ChatRequest(messages=[Message(role="user", content=text)], sampling=Sampling(max_new_tokens=5))

    async def scenario():
        first = asyncio.create_task(backend.complete(ask("a")))
        gone = asyncio.create_task(backend.complete(ask("b")))
        await asyncio.sleep(0)
        gone.cancel()
        return await first, await backend.complete(ask("c"))

    a, c = asyncio.run(scenario())
    assert a.text == c.text == "ok"
    assert [r.messages[-1].content for r in backend.requests] == ["a", "c"]
