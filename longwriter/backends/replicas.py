"""Several servers of one model, used as one: each request goes to the replica with the fewest
requests in flight (up to a per-replica cap). A replica that keeps failing (refused, timed out,
5xx after retries) is marked down, its requests are sent again to the others, and it is probed
again later; when every replica is down the run stops with one line and can be resumed.

The retry policy is ours rather than the SDK's (whose clients are built with ``max_retries=0``):
the SDK also retries 408 and 409, and hides when a replica's retries are spent, which is the
moment its requests must move to another replica."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import ModelError

T = TypeVar("T")
RETRIES = 2  # per replica, before it is marked down
BACKOFF = 0.5  # seconds before the first retry; doubles, with jitter
PROBE_AFTER = (5.0, 60.0)  # a down replica is probed after 5 s, then up to every 60 s


class Unavailable(Exception):
    """A replica failed in a way another replica may not (connection, timeout, 429, 5xx)."""


class AllDown(ModelError):
    """Every replica is down (exit 4); finished sections are saved and the run resumes."""


@dataclass
class Replica:
    """One server and what it did in this run (report.json's per-replica counts)."""

    url: str
    make_client: Callable[[str], object]  # an AsyncOpenAI client for this server
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    taken_over: int = 0  # requests re-sent here after another replica failed
    down: bool = False
    probe_after: float = 0.0  # seconds to the next probe while down
    last_error: str = ""
    _client: tuple | None = None

    @property
    def client(self):
        """This server's client for the running event loop (an HTTP connection pool must not
        outlive its loop: the API's plan() and expand() each run one)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            self._client = (loop, self.make_client(self.url))
        return self._client[1]

    async def aclose(self) -> None:
        """Close this loop's client: its connections must not outlive the loop."""
        if self._client is not None and self._client[0] is asyncio.get_running_loop():
            await self._client[1].close()
            self._client = None

    def stats(self) -> dict:
        return {"url": self.url, "requests": self.requests, "failures": self.failures, "taken_over": self.taken_over,
                "down": self.down, "last_error": self.last_error}


@dataclass
class ReplicaPool:
    """Replicas of one model with least-in-flight routing, failover and re-probing."""

    replicas: list[Replica]
    cap: int  # requests in flight per replica
    probe: Callable[[Replica], Awaitable[bool]]
    classify: Callable[[BaseException], bool]  # True: the replica is unavailable (retry, then fail over)
    _free: tuple | None = field(default=None, init=False)  # (loop, asyncio.Condition)
    _probes: dict[str, asyncio.Task] = field(default_factory=dict, init=False)

    async def call(self, send: Callable[[Replica], Awaitable[T]]) -> T:
        """``send`` to the best replica, retried there, then re-sent to others until one answers."""
        resent = False
        while True:
            replica = await self._acquire()
            try:
                replica.taken_over += resent
                return await self._with_retries(replica, send)
            except Unavailable:
                self.mark_down(replica)
                resent = True
            finally:
                replica.in_flight -= 1
                await self._notify()

    async def _with_retries(self, replica: Replica, send: Callable[[Replica], Awaitable[T]]) -> T:
        for attempt in range(RETRIES + 1):
            replica.requests += 1
            try:
                return await send(replica)
            except Exception as err:
                if not self.classify(err):
                    raise
                replica.failures += 1
                replica.last_error = f"{type(err).__name__}: {str(err)[:120]}"
                if attempt == RETRIES or replica.down:
                    raise Unavailable(replica.last_error) from err
                await asyncio.sleep(BACKOFF * 2**attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def _acquire(self) -> Replica:
        """The up replica with the fewest requests in flight, waiting while all are at the cap."""
        self._ensure_probes()
        condition = self._condition()
        async with condition:
            while True:
                up = [r for r in self.replicas if not r.down]
                if not up:
                    raise AllDown("every server is down (" + "; ".join(
                        f"{r.url}: {r.last_error}" for r in self.replicas) + "); finished sections are saved, "
                        "run the same command again to resume")
                best = min(up, key=lambda r: r.in_flight)
                if best.in_flight < self.cap:
                    best.in_flight += 1
                    return best
                await condition.wait()

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()  # one per loop, as the clients
        if self._free is None or self._free[0] is not loop:
            self._free = (loop, asyncio.Condition())
        return self._free[1]

    async def _notify(self) -> None:
        condition = self._condition()
        async with condition:
            condition.notify_all()

    def mark_down(self, replica: Replica, error: str = "") -> None:
        """Take ``replica`` out of rotation until a probe finds it answering again."""
        if not replica.down:
            replica.down, replica.probe_after = True, PROBE_AFTER[0]
        replica.last_error = error or replica.last_error
        try:
            self._ensure_probes()
        except RuntimeError:
            pass  # no loop yet (a replica down at start-up): the first request starts its probe

    def _ensure_probes(self) -> None:
        """A probe task, in the running loop, for every replica that is down."""
        loop = asyncio.get_running_loop()
        for replica in self.replicas:
            task = self._probes.get(replica.url)
            if replica.down and (task is None or task.done() or task.get_loop() is not loop):
                self._probes[replica.url] = loop.create_task(self._probe_later(replica))

    async def _probe_later(self, replica: Replica) -> None:
        """Probe a down replica with growing pauses; when it answers, it takes requests again."""
        while replica.down:
            await asyncio.sleep(replica.probe_after)
            if await self.probe(replica):
                replica.down = False
                await self._notify()
            else:
                replica.probe_after = min(PROBE_AFTER[1], replica.probe_after * 2)
