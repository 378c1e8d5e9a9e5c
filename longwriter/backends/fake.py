"""A scripted backend for fast tests of the logic (never a stand-in for the real model path)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import Backend, ChatRequest, Completion

Responder = Callable[[ChatRequest], str]


class ScriptedBackend(Backend):
    """Answers each request with ``responder(request)`` and records every batch it was sent.
    Token counts are word counts, so budgets behave predictably in tests."""

    name = "scripted"

    def __init__(self, responder: Responder, batch_size: int = 8) -> None:
        super().__init__()
        self.responder = responder
        self.batch_size = batch_size
        self.batches: list[list[ChatRequest]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        self.batches.append(list(requests))
        out = []
        for r in requests:
            text = self.responder(r)
            words = text.split()
            limit = r.sampling.max_new_tokens
            reason = "length" if len(words) > limit else "stop"
            text = " ".join(words[:limit]) if len(words) > limit else text
            out.append(Completion(text=text, prompt_tokens=sum(self.count_tokens(m.content) for m in r.messages),
                                  completion_tokens=min(len(words), limit), finish_reason=reason))
        return out

    @property
    def requests(self) -> list[ChatRequest]:
        return [r for batch in self.batches for r in batch]
