"""A scripted backend for fast tests of the logic (never a stand-in for the real model path).
It batches like an in-process engine (``DynamicBatcher``, without a thread), so tests can see
which requests were in flight together."""

from __future__ import annotations

import re
from collections.abc import Callable

from .base import Backend, ChatRequest, Completion
from .batching import DynamicBatcher

Responder = Callable[[ChatRequest], str]


class ScriptedBackend(Backend):
    """Answers each request with ``responder(request)`` and records every batch it ran.
    Token counts are word counts, so budgets behave predictably in tests."""

    name = "scripted"

    def __init__(self, responder: Responder, batch_size: int = 8) -> None:
        super().__init__()
        self.responder = responder
        self.batch_size = self.concurrency = batch_size
        self.batches: list[list[ChatRequest]] = []
        self._batcher = DynamicBatcher(self._run, lambda: self.batch_size, threaded=False,
                                       on_batch=lambda: self.on_batch)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def complete(self, request: ChatRequest) -> Completion:
        return await self._batcher.submit(request)

    def _run(self, requests: list[ChatRequest]) -> list[Completion]:
        self.batches.append(list(requests))
        return [self._answer(r) for r in requests]

    def _answer(self, r: ChatRequest) -> Completion:
        if self.cancelled:
            return Completion.cancelled()
        text = self.responder(r)
        words, limit = list(re.finditer(r"\S+", text)), r.sampling.max_new_tokens
        reason = "length" if len(words) > limit else "stop"
        cut = (text[: words[limit - 1].end()] if limit else "") if reason == "length" else text  # line breaks kept
        return Completion(text=cut,
                          prompt_tokens=sum(self.count_tokens(m.content) for m in r.messages),
                          completion_tokens=min(len(words), limit), finish_reason=reason)

    @property
    def requests(self) -> list[ChatRequest]:
        return [r for batch in self.batches for r in batch]
