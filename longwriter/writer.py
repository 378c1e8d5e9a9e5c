"""The section writer. Each section is a small coroutine: it yields chat requests (draft,
continuations, rewrites, summary) and receives completions; the scheduler sends each request
to the engine the moment it is yielded. CPU work (the checker) is yielded as ``Compute``.

This module only puts the parts in ``longwriter.writing`` together: prompts, sampling, the
tokens-per-word ratio, length control, the rewrite policy and summaries each live there."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from . import citations
from .backends.base import ChatRequest
from .checker import Checker, Scores, accept
from .context import ContextBuilder, SectionContext
from .length import count_words
from .outline import Outline
from .prompts import Prompts
from .writing.drafting import Draft, Drafter, clean_section_text
from .writing.prompts import SectionPrompts
from .writing.ratio import reference_ratio
from .writing.revision import Attempt, RevisionPolicy, best_attempt
from .writing.sampling import SamplingPolicy
from .writing.settings import SectionResult, WriterSettings
from .writing.summary import Summarizer
from .wrappers import MetaTalk

__all__ = ["Compute", "SectionResult", "SectionWriter", "Task", "WriterSettings", "clean_section_text"]


@dataclass
class Compute:
    """CPU work a section needs (the checker's scores): the scheduler runs ``run`` off the
    event loop and sends its result back into the section's coroutine."""

    run: Callable[[], Any]


Task = Generator["ChatRequest | Compute", Any, "SectionResult"]


class SectionWriter:
    """Writes the leaves of one outline. ``texts`` and ``summaries`` hold finished sections
    (filled by the pipeline as sections finish); the checker compares against ``texts``."""

    def __init__(self, outline: Outline, contexts: ContextBuilder, prompts: Prompts, count_tokens,
                 settings: WriterSettings, checker: Checker | None = None, attributor: Checker | None = None) -> None:
        self.outline, self.contexts, self.settings, self.checker = outline, contexts, settings, checker
        self.attributor = attributor  # attaches citations to supported sentences of a grounded run
        self.texts: dict[str, str] = {}
        self.summaries: dict[str, str] = {}
        self.prompts = SectionPrompts(outline, prompts, count_tokens)
        self.sampling = SamplingPolicy(settings, outline.language)
        self.wrappers = MetaTalk(prompts)  # the run's word lists (a --prompts-dir may override them)
        if checker:
            checker.wrappers = self.wrappers
        ratio = reference_ratio(count_tokens, outline.language)
        self.drafter = Drafter(self.prompts, self.sampling, settings, count_tokens, ratio, self.wrappers)
        self.summarizer = Summarizer(contexts.graph, self.prompts, self.sampling, settings, ratio, self.wrappers)
        self.revisions = RevisionPolicy(checker, settings) if checker else None

    def task(self, section_id: str) -> Task:
        """Write, check, rewrite (when needed) and summarise one section."""
        started = time.perf_counter()
        node = self.outline.find(section_id)
        ctx = self.contexts.build(section_id, self.texts, self.summaries)
        attempts: list[tuple[Draft, Scores | None]] = []
        plan = Attempt(section_id=section_id)
        for _ in range(self.settings.max_attempts if self.revisions else 1):
            draft = yield from self.drafter.draft(ctx, plan)
            scores = (yield from self._score(draft.text, ctx)) if self.checker else None
            attempts.append((draft, scores))
            if scores is None or scores.passed:
                break
            plan = self.revisions.next(plan, scores, self.prompts.feedback(scores, ctx), self._accepted())
        best, scores = best_attempt(attempts)
        text = self.wrappers.remove(best.text)  # meta-talk every rewrite kept: its sentences go
        text = citations.resolve(text, len(ctx.sources))  # a citation of nothing is removed
        attributed = 0
        if self.attributor and ctx.sources:
            text, attributed = yield Compute(lambda: self.attributor.attribute(text, ctx.sources))
        removed = best.removed + [sentence[:200] for sentence in self.wrappers.find(best.text)]
        summary = yield from self.summarizer.summary(section_id, text, ctx, self.summaries)
        return SectionResult(
            id=section_id, text=text, summary=summary, words=count_words(text), budget=node.words,
            attempts=len(attempts), continuations=best.continuations, scores=scores,
            attempt_scores=[s for _, s in attempts if s is not None],
            prompt_tokens=sum(d.prompt_tokens for d, _ in attempts),
            completion_tokens=sum(d.completion_tokens for d, _ in attempts),
            seconds=time.perf_counter() - started, node_hash=node.content_hash(), removed=removed,
            sources=ctx.source_labels, passages=ctx.sources, attributed=attributed,
        )

    def _accepted(self) -> dict[str, str]:
        """Finished sections by title, as the checker compares against them."""
        accepted: dict[str, str] = {}
        for sid, done in self.texts.items():
            accept(accepted, self.outline.find(sid).title, sid, done)
        return accepted

    def _score(self, text: str, ctx: SectionContext):
        """Checker scores (computed off the event loop), plus the optional yes/no judgement
        from the model itself."""
        accepted = self._accepted()  # taken now: other sections may finish while it runs
        scores = yield Compute(lambda: self.checker.score(text, topic=self.outline.topic, title=ctx.section_title,
                                                          brief=ctx.brief, budget=ctx.words, accepted=accepted,
                                                          language=self.outline.language, passages=ctx.sources))
        if self.settings.judge:
            verdict = yield ChatRequest(messages=self.prompts.messages(self.prompts.judge(ctx, text)),
                                        sampling=self.sampling.judge())
            scores.judge = not verdict.text.strip().lower().startswith("no")
            scores.problems = self.checker.problems(scores)
        return scores
