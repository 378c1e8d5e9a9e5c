"""The seam every stage uses: a backend takes a batch of chat requests and returns one
completion per request, in order. Batch-shaped so schedulers can keep the hardware full."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

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


class Completion(BaseModel):
    """The model's reply to one request."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length", "cancelled"]


class Backend(ABC):
    """A language model. Subclasses implement :meth:`generate`; everything else has defaults."""

    name: str = "backend"
    #: How many requests one generate call should hold at most (schedulers read it).
    batch_size: int = 8

    def __init__(self) -> None:
        self._cancel = threading.Event()

    @abstractmethod
    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Complete every request; the result is in the same order as ``requests``."""

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model (default: a characters-per-token estimate)."""
        return max(1, len(text) // 4) if text else 0

    def cancel(self) -> None:
        """Ask a running :meth:`generate` to stop early (from a signal handler or thread)."""
        self._cancel.set()

    def reset(self) -> None:
        """Clear a previous :meth:`cancel` (a reused backend starts a new run)."""
        self._cancel.clear()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()
