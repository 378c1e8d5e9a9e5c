"""Dependency-graph scheduling: every section whose dependencies are finished is in flight at
once, and the pending requests of all sections in flight go to the backend as one batch. A
finished section unlocks its dependants for the very next batch."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx

from .backends.base import Backend, ChatRequest
from .errors import Interrupted
from .graph import ready
from .writer import SectionResult, Task


@dataclass
class BatchStats:
    """What one generate call did (for progress displays and benchmarks)."""

    size: int
    completion_tokens: int
    seconds: float


@dataclass
class Scheduler:
    """Runs section tasks over ``graph``; ``done`` holds ids already finished (resume)."""

    graph: nx.DiGraph
    backend: Backend
    start: Callable[[str], Task]
    on_done: Callable[[SectionResult], None]
    done: set[str] = field(default_factory=set)
    batch_size: int | None = None
    on_batch: Callable[[BatchStats], None] = lambda stats: None
    should_stop: Callable[[], bool] = lambda: False

    def run(self) -> None:
        """Run until every section is done (raises :class:`Interrupted` when asked to stop)."""
        started, active = set(self.done), {}
        while True:
            for node in ready(self.graph, self.done, started):
                started.add(node)
                self._advance(active, node, self.start(node), None)
            if not active:
                return
            if self.should_stop() or self.backend.cancelled:
                raise Interrupted("stopped by the user; finished sections are saved")
            order = sorted(active, key=lambda n: self.graph.nodes[n]["order"])[: self.limit()]
            t0 = time.perf_counter()
            completions = self.backend.generate([active[n][1] for n in order])
            if self.backend.cancelled:
                raise Interrupted("stopped by the user; finished sections are saved")
            self.on_batch(BatchStats(len(order), sum(c.completion_tokens for c in completions), time.perf_counter() - t0))
            for node, completion in zip(order, completions):
                self._advance(active, node, active[node][0], completion)

    def limit(self) -> int:
        return self.batch_size or self.backend.batch_size

    def _advance(self, active: dict, node: str, task: Task, completion) -> None:
        """Send ``completion`` into the task; keep its next request, or finish the section."""
        try:
            request: ChatRequest = task.send(completion)
        except StopIteration as stop:
            active.pop(node, None)
            self.on_done(stop.value)
            self.done.add(node)
            return
        active[node] = (task, request)
