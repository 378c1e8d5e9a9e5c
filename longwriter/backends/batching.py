"""Dynamic batching for engines that run a batch at a time in this process (transformers'
padded ``generate``; the scripted test backend). Requests wait in a queue; whenever the engine
is free, every queued request that fits (up to the engine's rows, lowest ``priority`` first,
same stop strings) goes into the next batch. A request never waits for a batch it did not join,
and a finished batch frees its requests at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .base import BatchStats, ChatRequest, Completion

RunBatch = Callable[[list[ChatRequest]], list[Completion]]
GATHER_POLL = 0.05  # how often the wait looks again
GATHER_SHARE = 0.25  # the wait is at most this share of the last step's time...
GATHER_MAX = 5.0  # ...and at most this many seconds


@dataclass
class _Queue:
    loop: asyncio.AbstractEventLoop
    waiting: list[tuple[int, ChatRequest, asyncio.Future]] = field(default_factory=list)
    worker: asyncio.Task | None = None
    arrivals: int = 0


class DynamicBatcher:
    """Feeds ``run_batch`` (called in a worker thread when ``threaded``, so the event loop stays
    free while the model works) with whatever is waiting. ``rows`` gives the batch size now
    (it can shrink, e.g. after out-of-memory halving)."""

    def __init__(self, run_batch: RunBatch, rows: Callable[[], int], *, threaded: bool = True,
                 on_batch: Callable[[], Callable[[BatchStats], None] | None] = lambda: None,
                 gather: bool = False, upcoming: Callable[[], int] = lambda: 0,
                 executor: ThreadPoolExecutor | None = None) -> None:
        self.run_batch, self.rows, self.threaded, self.on_batch = run_batch, rows, threaded, on_batch
        self.gather = gather  # wait briefly for more rows before a step that is not full (see _gather)
        self.upcoming = upcoming  # requests the caller will send in a moment
        self._queue: _Queue | None = None
        self._executor = executor  # the engine's thread (on CPU: cpu_thread's); else one of its own
        self._last_step = 0.0  # seconds the last step took

    async def in_worker(self, fn, *args):
        """Run ``fn`` in this engine's worker thread. Always the same thread: torch's OpenMP
        team stays warm (see ``cpu_thread``; asyncio.to_thread hands calls to whichever pool
        thread is free)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="longwriter-engine")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, request: ChatRequest) -> Completion:
        queue = self._queue_for(asyncio.get_running_loop())
        future = queue.loop.create_future()
        queue.waiting.append((queue.arrivals, request, future))
        queue.arrivals += 1
        if queue.worker is None or queue.worker.done():
            queue.worker = queue.loop.create_task(self._work(queue))
        return await future

    def _queue_for(self, loop: asyncio.AbstractEventLoop) -> _Queue:
        # A backend outlives event loops (the sync API runs one per call): one queue per loop.
        if self._queue is None or self._queue.loop is not loop:
            self._queue = _Queue(loop)
        return self._queue

    async def _work(self, queue: _Queue) -> None:
        while queue.waiting:
            await asyncio.sleep(0)  # requests made in this same turn of the loop join the batch
            await self._gather(queue)
            batch = self._take(queue)
            if not batch:  # every waiting request was cancelled meanwhile
                break
            started = time.perf_counter()
            try:
                requests = [r for _, r, _ in batch]
                done = await self.in_worker(self.run_batch, requests) if self.threaded else self.run_batch(requests)
            except BaseException as err:  # the engine failed: every request of the batch fails with it
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            self._last_step = time.perf_counter() - started
            self._report(batch, done, self._last_step, len(queue.waiting))

    async def _gather(self, queue: _Queue) -> None:
        """Before a step with free rows, wait while the caller announces requests about to
        come (sections whose checks are running), for at most GATHER_SHARE of the last step
        and GATHER_MAX s. A padded step on CPU costs nearly as much for a few rows as for
        sixteen (measured: 7 s for one 200-token row, 26 s for sixteen), so rewrites whose
        checks end a moment apart are worth one step together. Nothing announced: no wait, so
        a lone request (a serial run, a planning round) starts at once."""
        if not self.gather:
            return
        deadline = time.perf_counter() + min(GATHER_MAX, GATHER_SHARE * self._last_step)
        while self.upcoming() and len(self._pending(queue)) < self.rows() and time.perf_counter() < deadline:
            await asyncio.sleep(min(GATHER_POLL, max(0.0, deadline - time.perf_counter())))

    def _take(self, queue: _Queue) -> list[tuple[int, ChatRequest, asyncio.Future]]:
        """The next batch: cancelled waiters dropped; lowest priority, then oldest, first; only
        requests with the first one's stop strings (stop strings cannot differ within a batch)."""
        if not self._pending(queue):
            return []
        key = queue.waiting[0][1].sampling.group_key()
        batch = [w for w in queue.waiting if w[1].sampling.group_key() == key][: max(1, self.rows())]
        taken = {id(w) for w in batch}
        queue.waiting = [w for w in queue.waiting if id(w) not in taken]
        return batch

    @staticmethod
    def _pending(queue: _Queue) -> list:
        """The waiting requests, cancelled ones dropped, lowest priority then oldest first."""
        queue.waiting = [w for w in queue.waiting if not w[2].done()]
        queue.waiting.sort(key=lambda w: (w[1].priority, w[0]))
        return queue.waiting

    def _report(self, batch, done: list[Completion], seconds: float, waiting: int) -> None:
        for (_, _, future), completion in zip(batch, done):
            if not future.done():
                future.set_result(completion)
        hook = self.on_batch()
        if hook is not None:
            hook(BatchStats(len(batch), sum(c.completion_tokens for c in done), seconds,
                            longest=max((c.completion_tokens for c in done), default=0), waiting=waiting))


class ContinuousBatcher(DynamicBatcher):
    """Iteration-level batching over a :class:`stepping.SteppingEngine`: between two decode
    steps, finished requests are answered and waiting ones join, up to ``rows()`` in flight.
    On out-of-memory every running request goes back to the queue (it restarts from its seed,
    so its text is unchanged) and ``shrink`` lowers the rows; at one row it is an error."""

    def __init__(self, engine, rows: Callable[[], int], *, out_of_memory: tuple[type[BaseException], ...] = (),
                 shrink: Callable[[], None] = lambda: None,
                 on_batch: Callable[[], Callable[[BatchStats], None] | None] = lambda: None,
                 executor: ThreadPoolExecutor | None = None) -> None:
        super().__init__(lambda requests: [], rows, on_batch=on_batch, executor=executor)
        self.engine, self.out_of_memory, self.shrink = engine, out_of_memory, shrink

    def _queue_for(self, loop: asyncio.AbstractEventLoop) -> _Queue:
        if self._queue is not None and self._queue.loop is not loop and self._executor is not None:
            # rows of a finished event loop: nobody awaits them any more. Dropped in the worker
            # thread, after any step still running there, and before anything this loop sends.
            self._executor.submit(self.engine.drop_all)
        return super()._queue_for(loop)

    async def _work(self, queue: _Queue) -> None:
        while queue.waiting or self.engine.active:
            await asyncio.sleep(0)  # requests made in this same turn of the loop join now
            for row in self.engine.rows:
                if row.ticket.done():  # its caller went away (a cancelled task): stop spending on it
                    row.reason = "cancelled"
            joining = self._take_any(queue, self.rows() - self.engine.active)
            started = time.perf_counter()
            try:
                done, produced, rows = await self.in_worker(self._advance, [(r, f) for _, r, f in joining])
            except self.out_of_memory:
                self._requeue(queue, joining)
                continue
            except asyncio.CancelledError:  # the loop is shutting down: the next one drops the rows
                raise
            except BaseException as err:  # the engine failed: every request in it fails with it
                self._fail(joining, err)
                continue
            self._answer(done, BatchStats(rows, produced, time.perf_counter() - started, longest=1,
                                          waiting=len(queue.waiting)))

    def _advance(self, joining: list) -> tuple[list, int, int]:
        """Prefill the joining requests, then one decode step: (finished, tokens made, rows)."""
        done = self.engine.admit(joining) if joining else []
        rows = stepped = self.engine.active
        rows += len(done)
        if stepped:
            done += self.engine.step()
        return done, len(joining) + stepped, rows

    def _take_any(self, queue: _Queue, room: int) -> list[tuple[int, ChatRequest, asyncio.Future]]:
        """Up to ``room`` waiting requests, lowest priority then oldest first (stop strings
        are checked per row here, so any requests can run together)."""
        if not self._pending(queue) or room <= 0:
            return []
        taken, queue.waiting = queue.waiting[:room], queue.waiting[room:]
        return taken

    def _requeue(self, queue: _Queue, joining: list) -> None:
        rows = self.engine.drop_all()
        if self.rows() <= 1:
            from ..errors import ModelError

            self._fail(joining, ModelError("out of GPU memory even at batch size 1; use a smaller model"), rows)
            return
        self.shrink()
        queue.waiting.extend(joining)
        joined = {id(future) for _, _, future in joining}  # admitted, then the step ran out of memory
        queue.waiting.extend((-1, row.request, row.ticket) for row in rows if id(row.ticket) not in joined)

    def _fail(self, joining: list, err: BaseException, rows: list | None = None) -> None:
        rows = self.engine.drop_all() if rows is None else rows
        for future in [f for _, _, f in joining] + [row.ticket for row in rows]:
            if not future.done():
                future.set_exception(err)

    def _answer(self, done: list, stats: BatchStats) -> None:
        for future, completion in done:
            if not future.done():
                future.set_result(completion)
        hook = self.on_batch()
        if hook is not None:  # one engine step: every running row made one token (two when it joined)
            hook(stats)
