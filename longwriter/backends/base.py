"""The seam every stage uses: one async call per request (``complete``). Schedulers keep many
requests in flight; an engine batches whatever is waiting (dynamic or continuous batching)."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import defaults


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Sampling(BaseModel):
    """Decoding options for one request."""

    model_config = ConfigDict(frozen=True)

    max_new_tokens: int = Field(512, gt=0)
    min_new_tokens: int = Field(0, ge=0)
    temperature: float = Field(defaults.TEMPERATURE, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(50, ge=0)
    repetition_penalty: float = Field(1.1, gt=0.0)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    banned_openings: tuple[str, ...] = Field((), description="words the reply may not begin with (wrapper "
                                             "openings such as 'Here'); engines that can steer the first "
                                             "token ban each word that is one token")
    script: str = Field("", description="language whose script to write (zh, ja, ko): engines that can "
                        "penalise tokens of Latin letters (rowsampling.SCRIPT_PENALTY)")

    def cut(self, text: str, reason: str) -> tuple[str, str]:
        """``text`` cut before each of the stop strings it contains (in the order given), and
        the finish reason: ``stop`` when one was found, else ``reason``. Engines whose stop
        criteria work on tokens let a few characters past the stop string; this trims them."""
        for stop in self.stop:
            if stop in text:
                text, reason = text[: text.index(stop)], "stop"
        return text, reason

    def group_key(self) -> tuple:
        """Options that must be equal for requests to share one batched generate call
        (limits, sampling options and seeds are applied per row; stop strings are not)."""
        return (self.stop,)


class ChatRequest(BaseModel):
    """A conversation to complete. ``prefill`` is text the assistant's reply starts with
    (the completion continues it and does not repeat it)."""

    messages: list[Message]
    sampling: Sampling = Sampling()
    prefill: str = ""
    avoid: str = Field("", description="text the reply must not retell: backends that can penalise its "
                       "tokens as if already written (repetition penalty) do so")
    priority: int = Field(0, description="lower goes first when an engine has more requests than rows "
                          "(the scheduler sets the section's position in the document)")


class Completion(BaseModel):
    """The model's reply to one request."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length", "cancelled"]

    @classmethod
    def cancelled(cls) -> Completion:
        """The reply to a request the run stopped before it was generated."""
        return cls(text="", prompt_tokens=0, completion_tokens=0, finish_reason="cancelled")


@dataclass
class BatchStats:
    """What one engine step did: rows, tokens, seconds (for progress displays and benchmarks)."""

    size: int
    completion_tokens: int
    seconds: float
    longest: int = 0  # tokens of the longest row (a padded batch runs until it ends)
    waiting: int = 0  # requests queued when the step ended (they waited for it)


class Backend(ABC):
    """A language model behind one async call per request, as vLLM's AsyncLLM: batching is the
    engine's own business. Subclasses implement :meth:`complete`; everything else has defaults."""

    name: str = "backend"
    #: How many requests are worth having in flight at once (the scheduler's default bound).
    concurrency: int = 8
    #: Whether a request joins the running batch between two decode steps (servers, the
    #: stepping engine) rather than waiting for the whole batch to end (padded ``generate``).
    continuous: bool = True

    def __init__(self) -> None:
        self._cancel = threading.Event()
        #: Called with each engine step's statistics, when the engine has steps (progress bars).
        self.on_batch: Callable[[BatchStats], None] | None = None
        # How many requests the caller will send in a moment (sections whose checks are running):
        # an engine that pays as much for a step of few rows as of many may wait for them.
        self.upcoming: Callable[[], int] = lambda: 0
        #: Lines worth showing once when a run starts (what a server lacks, for instance).
        self.notes: list[str] = []
        #: Sampling the model's publisher recommends (temperature, top_p): the writer's defaults.
        self.recommended: dict[str, float] = {}

    @abstractmethod
    async def complete(self, request: ChatRequest) -> Completion:
        """Complete one request. Many may be awaited at once; the engine batches them."""

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Complete ``requests`` together from synchronous code (scripts, tests); in order."""

        async def together() -> list[Completion]:
            try:
                return list(await asyncio.gather(*(self.complete(r) for r in requests)))
            finally:
                await self.aclose()

        return asyncio.run(together())

    async def run_cpu(self, fn: Callable[[], Any]) -> Any:
        """Run the caller's CPU work (the checker's embeddings) off the event loop. Default: a
        thread of its own; an engine that computes on the same CPU runs it in its own turn."""
        return await asyncio.to_thread(fn)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model (default: a characters-per-token estimate)."""
        return max(1, len(text) // 4) if text else 0

    async def aclose(self) -> None:
        """Release what is bound to the running event loop (a server backend's connections);
        called at the end of every run. The backend stays usable from another loop."""

    def report(self) -> dict:
        """What the engine did in this run, for report.json (servers: requests per replica)."""
        return {}

    def cancel(self) -> None:
        """Ask running and queued requests to stop early (from a signal handler or thread)."""
        self._cancel.set()

    def reset(self) -> None:
        """Clear a previous :meth:`cancel` (a reused backend starts a new run)."""
        self._cancel.clear()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()
