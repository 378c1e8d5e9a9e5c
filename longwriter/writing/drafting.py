"""Length control: a draft, continuations while it is short of its budget, a cut back to the budget when long."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from pydantic import BaseModel

from .. import blocks
from ..backends.base import ChatRequest
from ..context import SectionContext, tail_tokens
from ..length import count_words, drop_unfinished_tail, fit_to_words
from ..wrappers import MetaTalk
from .prompts import SectionPrompts
from .ratio import TokenRatio
from .revision import Attempt
from .sampling import SamplingPolicy
from .settings import WriterSettings

CONTINUATION_TAIL_TOKENS = 200  # the end of the draft a continuation is prefilled with


class Draft(BaseModel):
    text: str
    removed: list[str] = []  # wrapper text cut from its generations
    continuations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def clean_section_text(text: str, title: str, wrappers: MetaTalk | None = None, *, titles: tuple[str, ...] = (),
                       start: bool = True, cuts: list[str] | None = None) -> str:
    """Remove what the model adds around prose: markdown headings, wrapper sentences at either
    end ("Here is…", "Hope this helps"), and at a section's ``start`` a heading-like line, a
    marker or a repeated title (``title`` or one of ``titles``)."""
    text = _without_open_block(text.strip())
    text = blocks.prose_map(text, _without_headings)  # a "# comment" in code stays
    text = (wrappers or _default_wrappers()).strip(text, (title, *titles), start, cuts)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _without_open_block(text: str) -> str:
    """A fence or ``$$`` block the text never closes: after prose it is a tail the token limit
    cut off, and goes (a continuation writes on); as the whole text, it is a model that opened
    a fence and wrote prose in it ("```python\n# Introduction\n## Overview…"): its opening
    line goes and the rest is cleaned as prose."""
    tail = blocks.open_tail(text)
    if tail is None:
        return text
    before, block = tail
    if before.strip():
        return before.rstrip()
    _, _, inside = block.strip().partition("\n")  # all after the opening line
    return inside


def _without_headings(prose: str) -> str:
    return "".join(ln for ln in prose.splitlines(keepends=True) if not re.match(r"^\s*#{1,6}\s", ln))


@functools.cache
def _default_wrappers() -> MetaTalk:
    return MetaTalk()


class Drafter:
    """Writes one draft of a section to its budget, within the settings' tolerance."""

    def __init__(self, prompts: SectionPrompts, sampling: SamplingPolicy, settings: WriterSettings,
                 count_tokens: Callable[[str], int], tokens_per_word: float, wrappers: MetaTalk) -> None:
        self.prompts, self.sampling, self.settings = prompts, sampling, settings
        self.count_tokens, self.tokens_per_word, self.wrappers = count_tokens, tokens_per_word, wrappers

    def draft(self, ctx: SectionContext, plan: Attempt):
        """Draft, continue while short of the budget, cut back to it when long (a generator of requests)."""
        user = self.prompts.section(ctx, plan.feedback)
        done = yield self._request(user, plan, ctx.words, 0, self.tokens_per_word)
        ratio = TokenRatio(prior=self.tokens_per_word)
        ratio.observe(done.completion_tokens, done.text)
        draft = Draft(text="", prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens)
        draft.text = self._clean(done.text, ctx, True, draft.removed)
        while self._short(draft, ctx.words):
            missing = ctx.words - self._reached(draft)  # > 0, since _short counts the same
            more = yield self._request(user, plan, missing, draft.continuations + 1, ratio.value,
                                       prefill=tail_tokens(draft.text, CONTINUATION_TAIL_TOKENS, self.count_tokens) + " ")
            if count_words(more.text) == 0:  # symbols only (a small model's Chinese noise): the next
                draft.continuations += 1      # try draws with another seed; the bound still holds
                draft.completion_tokens += more.completion_tokens
                continue
            ratio.observe(more.completion_tokens, more.text)
            self._extend(draft, more, self._clean(more.text, ctx, False, draft.removed))
        if not self.settings.fixed_tokens:  # aim at the budget, not at a ceiling above it
            draft.text = fit_to_words(drop_unfinished_tail(draft.text), ctx.words)
        return draft

    def _short(self, draft: Draft, words: int) -> bool:
        """Below the budget's tolerance, counting only finished sentences: a sentence the token
        limit cut off is dropped at the end, so it must not stop the continuations."""
        s = self.settings
        low = words * (1 - s.length_tolerance)
        if draft.continuations >= s.max_continuations or s.fixed_tokens:
            return False
        return self._reached(draft) < low

    @staticmethod
    def _reached(draft: Draft) -> int:
        """The words of the draft's finished sentences (the length it has reached)."""
        return count_words(drop_unfinished_tail(draft.text))

    def _request(self, user: str, plan: Attempt, words: int, step: int, ratio: float,
                 prefill: str = "") -> ChatRequest:
        sampling = self.sampling.prose(words, plan.section_id, plan.number, step, ratio, plan.penalty_boost)
        if not prefill:  # a reply of its own: engines that can steer its first token keep wrappers out
            sampling = sampling.model_copy(update={"banned_openings": self.wrappers.banned_openings})
        return ChatRequest(messages=self.prompts.messages(user), prefill=prefill, avoid=plan.avoid, sampling=sampling)

    def _clean(self, text: str, ctx: SectionContext, start: bool, cuts: list[str]) -> str:
        titles = (ctx.chapter, self.prompts.outline.title)
        found: list[str] = []
        clean = clean_section_text(text, ctx.section_title, self.wrappers, titles=titles, start=start, cuts=found)
        cuts += [piece[:200] for piece in found]
        return clean

    @staticmethod
    def _extend(draft: Draft, more, cleaned: str) -> None:
        draft.text = (draft.text + " " + cleaned).strip()
        draft.continuations += 1
        draft.prompt_tokens += more.prompt_tokens
        draft.completion_tokens += more.completion_tokens
