"""Length control: a draft, continuations while it is short of its budget, a trim when long."""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel

from ..backends.base import ChatRequest
from ..context import SectionContext, tail_tokens
from ..length import count_words, drop_unfinished_tail, trim_to_words
from .prompts import SectionPrompts
from .ratio import TokenRatio
from .revision import Attempt
from .sampling import SamplingPolicy
from .settings import WriterSettings

CONTINUATION_TAIL_TOKENS = 200  # the end of the draft a continuation is prefilled with


class Draft(BaseModel):
    text: str
    continuations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def clean_section_text(text: str, title: str) -> str:
    """Remove what the model adds around prose: headings, a repeated title, stray markers."""
    lines = [ln for ln in text.strip().splitlines() if not re.match(r"^\s*#{1,6}\s", ln)]
    text = "\n".join(lines).strip()
    if text.lower().startswith(title.lower()):
        text = text[len(title):].lstrip(" :.-\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class Drafter:
    """Writes one draft of a section to its budget, within the settings' tolerance."""

    def __init__(self, prompts: SectionPrompts, sampling: SamplingPolicy, settings: WriterSettings,
                 count_tokens: Callable[[str], int], tokens_per_word: float) -> None:
        self.prompts, self.sampling, self.settings = prompts, sampling, settings
        self.count_tokens, self.tokens_per_word = count_tokens, tokens_per_word

    def draft(self, ctx: SectionContext, plan: Attempt):
        """Draft, continue while short of the budget, trim when long (a generator of requests)."""
        user = self.prompts.section(ctx, plan.feedback)
        done = yield self._request(user, plan, ctx.words, 0, self.tokens_per_word)
        ratio = TokenRatio(prior=self.tokens_per_word)
        ratio.observe(done.completion_tokens, done.text)
        draft = Draft(text=clean_section_text(done.text, ctx.section_title),
                      prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens)
        while self._short(draft, ctx.words):
            missing = ctx.words - count_words(draft.text)
            more = yield self._request(user, plan, missing, draft.continuations + 1, ratio.value,
                                       prefill=tail_tokens(draft.text, CONTINUATION_TAIL_TOKENS, self.count_tokens) + " ")
            if count_words(more.text) == 0:
                break
            ratio.observe(more.completion_tokens, more.text)
            self._extend(draft, more, ctx.section_title)
        if not self.settings.fixed_tokens:
            high = ctx.words * (1 + self.settings.length_tolerance)
            draft.text = trim_to_words(drop_unfinished_tail(draft.text), int(high))
        return draft

    def _short(self, draft: Draft, words: int) -> bool:
        s = self.settings
        low = words * (1 - s.length_tolerance)
        return count_words(draft.text) < low and draft.continuations < s.max_continuations and not s.fixed_tokens

    def _request(self, user: str, plan: Attempt, words: int, step: int, ratio: float,
                 prefill: str = "") -> ChatRequest:
        sampling = self.sampling.prose(words, plan.section_id, plan.number, step, ratio, plan.penalty_boost)
        return ChatRequest(messages=self.prompts.messages(user), prefill=prefill, avoid=plan.avoid, sampling=sampling)

    @staticmethod
    def _extend(draft: Draft, more, title: str) -> None:
        draft.text = (draft.text + " " + clean_section_text(more.text, title)).strip()
        draft.continuations += 1
        draft.prompt_tokens += more.prompt_tokens
        draft.completion_tokens += more.completion_tokens
