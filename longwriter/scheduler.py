"""Dependency-graph scheduling on asyncio, request by request. Every section whose dependencies
are finished runs as its own task; each of its requests goes to the backend the moment the
previous one returns (a short summary never waits for a long draft), and a finished section
starts its dependants at once. ``concurrency`` bounds the requests in flight; the engine
batches whatever is waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx

from .backends.base import Backend, ChatRequest, Completion
from .errors import Interrupted
from .graph import ready
from .writer import Compute, SectionResult, Task


@dataclass
class Scheduler:
    """Runs section tasks over ``graph``; ``done`` holds ids already finished (resume)."""

    graph: nx.DiGraph
    backend: Backend
    start: Callable[[str], Task]
    on_done: Callable[[SectionResult], None]
    done: set[str] = field(default_factory=set)
    concurrency: int | None = None
    should_stop: Callable[[], bool] = lambda: False
    #: When each section became ready and when its first request went out (benchmarks read it).
    timeline: dict[str, list[float]] = field(default_factory=dict)
    #: Tasks that add sections to the graph while the run goes on (a batch's plans): the run
    #: lasts until they are done too, and a failure among them stops it.
    feeders: set[asyncio.Task] = field(default_factory=set)
    _computing: int = 0  # sections running CPU work now (the checker)

    async def run(self) -> None:
        """Run until every section is done (raises :class:`Interrupted` when asked to stop)."""
        slots = asyncio.Semaphore(self.concurrency or self.backend.concurrency)
        started, running = set(self.done), {}
        self.backend.upcoming = lambda: self._computing  # each will send its next request soon
        try:
            while True:
                for node in ready(self.graph, self.done, started):
                    started.add(node)
                    self.timeline[node] = [asyncio.get_running_loop().time()]
                    running[asyncio.create_task(self._section(node, slots))] = node
                if not running and not self.feeders:
                    return
                finished, _ = await asyncio.wait([*running, *self.feeders], return_when=asyncio.FIRST_COMPLETED)
                for task in finished & self.feeders:
                    self.feeders.discard(task)
                    task.result()  # a fatal failure (a stop, an unusable engine) ends the run here
                for task in sorted(finished & running.keys(), key=lambda t: self._order(running[t])):
                    self.on_done(task.result())  # a failed section raises here, stopping the run
                    self.done.add(running.pop(task))
        finally:
            self.backend.upcoming = lambda: 0
            await _cancel_all(running)

    def _order(self, node: str) -> int:
        return self.graph.nodes[node]["order"]

    async def _section(self, node: str, slots: asyncio.Semaphore) -> SectionResult:
        """Drive one section's coroutine: send each request, return its result."""
        task, reply = self.start(node), None
        while True:
            try:
                step = task.send(reply)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, Compute):  # CPU work (the checker's embeddings): off the event loop
                self._computing += 1
                try:
                    reply = await self.backend.run_cpu(step.run)
                finally:
                    self._computing -= 1
                continue
            reply = await self._ask(node, step, slots)

    async def _ask(self, node: str, request: ChatRequest, slots: asyncio.Semaphore) -> Completion:
        self._check_stop()
        async with slots:
            if len(self.timeline[node]) == 1:
                self.timeline[node].append(asyncio.get_running_loop().time())
            completion = await self.backend.complete(request.model_copy(update={"priority": self._order(node)}))
        self._check_stop()
        return completion

    def _check_stop(self) -> None:
        if self.should_stop() or self.backend.cancelled:
            raise Interrupted("stopped by the user; finished sections are saved")


async def _cancel_all(tasks) -> None:
    """Cancel unfinished section tasks and wait for them (a stopped run leaves none behind)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
