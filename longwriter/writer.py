"""The section writer. Each section is a small coroutine: it yields chat requests (draft,
continuations, rewrites, summary) and receives completions; the scheduler sends each request
to the engine the moment it is yielded. CPU work (the checker) is yielded as ``Compute``."""

from __future__ import annotations

import math
import re
import time
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import defaults
from .backends.base import ChatRequest, Message, Sampling
from .checker import Checker, Scores, accept
from .graph import previous_in_chain
from .context import ContextBuilder, SectionContext, head_tokens, tail_tokens
from .length import count_words, drop_unfinished_tail, trim_to_words
from .outline import Outline
from .prompts import Prompts

@dataclass
class Compute:
    """CPU work a section needs (the checker's scores): the scheduler runs ``run`` off the
    event loop and sends its result back into the section's coroutine."""

    run: Callable[[], Any]


Task = Generator["ChatRequest | Compute", Any, "SectionResult"]

# Calibration text for the tokens-per-word ratio of the model in use (per language).
_SAMPLES = {
    "en": ("Coffee reached Europe in the seventeenth century, when merchants from Venice brought beans "
           "from the Ottoman ports. Within decades, coffeehouses had become places where people read "
           "newspapers, argued about politics and signed contracts, and the drink shaped daily life."),
    "zh": ("咖啡在十七世纪传入欧洲，威尼斯商人从奥斯曼帝国的港口带回了咖啡豆。几十年内，咖啡馆成为人们"
           "读报、讨论政治和签订合同的场所，这种饮品深刻地改变了日常生活。"),
}


class WriterSettings(BaseModel):
    """How sections are written. Defaults suit small local models; every field is bounded, so
    an impossible setting is refused when built, not deep inside a run."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: float = Field(defaults.TEMPERATURE, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(defaults.REPETITION_PENALTY, ge=1.0, le=2.0)
    seed: int = Field(0, ge=0, le=defaults.MAX_SEED)
    length_tolerance: float = Field(0.15, ge=0.0, le=0.9,
                                    description="accepted shortfall/overshoot as a share of the budget")
    max_continuations: int = Field(3, ge=0, le=20)
    max_request_tokens: int = Field(1024, ge=16, le=1_000_000,
                                    description="longest single generation; continuations do the rest")
    max_attempts: int = Field(defaults.MAX_ATTEMPTS, ge=1, le=10, description="drafts per section when the checker is on (1 = no rewrites)")
    check: bool = True
    avoid_retelling: bool = Field(True, description="a rewrite of a repeat penalises the words of the "
                                  "section it repeated")
    judge: bool = False
    summary_words: int = Field(60, ge=5, le=1000)
    summarize: Literal["needed", "all"] = Field("needed", description="summarise every section, or only "
                                                 "those a later section reads")
    fixed_tokens: int | None = Field(None, ge=1, le=100_000,
                                     description="benchmarks: exactly this many new tokens per request")


class SectionResult(BaseModel):
    """A finished section, as stored in the run directory and its report."""

    id: str
    text: str
    summary: str = ""
    words: int
    budget: int
    attempts: int = 1
    continuations: int = 0
    scores: Scores | None = None
    attempt_scores: list[Scores] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    node_hash: str = ""


@dataclass
class TokenRatio:
    """Tokens per counted word, learned from one section's own output: the tokenizer's ratio
    on a reference paragraph is the prior, worth ``weight`` words."""

    prior: float
    weight: int = 200
    tokens: int = 0
    words: int = 0

    def observe(self, tokens: int, text: str) -> None:
        words = count_words(text)
        if words and tokens:
            self.tokens, self.words = self.tokens + tokens, self.words + words

    @property
    def value(self) -> float:
        return (self.prior * self.weight + self.tokens) / (self.weight + self.words)


class _Attempt(BaseModel):
    """What one draft of a section is asked for: the first has no feedback, rewrites do."""

    section_id: str
    number: int = 0
    feedback: list[str] = Field(default_factory=list)
    avoid: str = ""
    penalty_boost: float = 0.0


class _Draft(BaseModel):
    text: str
    continuations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def best_attempt(attempts: list[tuple[_Draft, Scores | None]]) -> tuple[_Draft, Scores | None]:
    """The draft to keep: one that passes the checker beats one that does not (a rewrite that
    fixed the repetition wins even if the copy read as more on-topic); among equals, the
    higher quality score; on a tie, the earlier draft."""
    return max(attempts, key=lambda a: (a[1].passed, a[1].quality()) if a[1] else (True, 0.0))


def clean_section_text(text: str, title: str) -> str:
    """Remove what the model adds around prose: headings, a repeated title, stray markers."""
    lines = [ln for ln in text.strip().splitlines() if not re.match(r"^\s*#{1,6}\s", ln)]
    text = "\n".join(lines).strip()
    if text.lower().startswith(title.lower()):
        text = text[len(title):].lstrip(" :.-\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class SectionWriter:
    """Writes the leaves of one outline. ``texts`` and ``summaries`` hold finished sections
    (filled by the pipeline as sections finish); the checker compares against ``texts``."""

    def __init__(self, outline: Outline, contexts: ContextBuilder, prompts: Prompts, count_tokens,
                 settings: WriterSettings, checker: Checker | None = None) -> None:
        self.outline, self.contexts, self.prompts = outline, contexts, prompts
        self.count_tokens, self.settings, self.checker = count_tokens, settings, checker
        self.texts: dict[str, str] = {}
        self.summaries: dict[str, str] = {}
        sample = _SAMPLES["zh" if outline.language.startswith("zh") else "en"]
        # The tokenizer's ratio on a reference paragraph. Each section then learns from its own
        # output only (models write numbers, names and markup the sample lacks), so a section's
        # requests never depend on which other sections finished first, nor change on resume.
        self.tokens_per_word = max(0.5, count_tokens(sample) / count_words(sample))
        self.system = prompts.render("system", **outline.model_dump(exclude={"sections"}))

    # ------------------------------------------------------------------ requests

    def _messages(self, user: str) -> list[Message]:
        return [Message(role="system", content=self.system), Message(role="user", content=user)]

    def _seed(self, section_id: str, attempt: int, step: int) -> int:
        """A request's own seed: its text then depends on its prompt and seed only, not on the
        requests it shares a batch with (runs are reproducible, checker on/off comparable)."""
        return zlib.crc32(f"{self.settings.seed}/{section_id}/{attempt}/{step}".encode())

    def _sampling(self, words: int, plan: _Attempt, step: int, ratio: float) -> Sampling:
        s = self.settings
        if s.fixed_tokens:
            n = lo = s.fixed_tokens
        else:
            n = min(s.max_request_tokens, math.ceil(words * ratio * (1 + s.length_tolerance)) + 8)
            lo = min(n, int(words * ratio * (1 - s.length_tolerance)))
        return Sampling(max_new_tokens=n, min_new_tokens=lo, temperature=s.temperature, top_p=s.top_p,
                        repetition_penalty=s.repetition_penalty + plan.penalty_boost,
                        seed=self._seed(plan.section_id, plan.number, step))

    def section_prompt(self, ctx: SectionContext, feedback: list[str]) -> str:
        return self.prompts.render("section", **self.outline.model_dump(exclude={"sections", "words"}),
                                   **ctx.model_dump(exclude={"id"}), feedback=feedback)

    # ------------------------------------------------------------------ the coroutine

    def task(self, section_id: str) -> Task:
        """Write, check, rewrite (when needed) and summarise one section."""
        started = time.perf_counter()
        node = self.outline.find(section_id)
        ctx = self.contexts.build(section_id, self.texts, self.summaries)
        attempts: list[tuple[_Draft, Scores | None]] = []
        plan = _Attempt(section_id=section_id)
        for number in range(self.settings.max_attempts if self.checker else 1):
            draft = yield from self._draft(ctx, plan)
            scores = (yield from self._score(draft.text, ctx)) if self.checker else None
            attempts.append((draft, scores))
            if scores is None or scores.passed:
                break
            plan = self._revision(plan, scores, number + 1)
        best, scores = best_attempt(attempts)
        summary = yield from self._summary(section_id, best.text, ctx)
        return SectionResult(
            id=section_id, text=best.text, summary=summary, words=count_words(best.text), budget=node.words,
            attempts=len(attempts), continuations=best.continuations, scores=scores,
            attempt_scores=[s for _, s in attempts if s is not None],
            prompt_tokens=sum(d.prompt_tokens for d, _ in attempts), completion_tokens=sum(d.completion_tokens for d, _ in attempts),
            seconds=time.perf_counter() - started, node_hash=node.content_hash(),
        )

    def _revision(self, previous: _Attempt, scores: Scores, number: int) -> _Attempt:
        """How to rewrite a rejected draft: its problems as feedback, a new seed, the words of a
        section it retold to avoid, and a higher repetition penalty only when it looped (the
        penalty also covers the prompt's topic words, so raising it otherwise pushes the
        rewrite off-topic; measured on the embedded model)."""
        boost = 0.1 if self.checker.looped(scores) else 0.0
        return _Attempt(section_id=previous.section_id, number=number, feedback=scores.problems,
                        avoid=self._retold(scores), penalty_boost=previous.penalty_boost + boost)

    def _draft(self, ctx: SectionContext, plan: _Attempt):
        """Draft, continue while short of the budget, trim when long."""
        user = self.section_prompt(ctx, plan.feedback)
        done = yield ChatRequest(messages=self._messages(user), avoid=plan.avoid,
                                 sampling=self._sampling(ctx.words, plan, 0, self.tokens_per_word))
        ratio = TokenRatio(prior=self.tokens_per_word)
        ratio.observe(done.completion_tokens, done.text)
        draft = _Draft(text=clean_section_text(done.text, ctx.section_title),
                       prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens)
        low, high = ctx.words * (1 - self.settings.length_tolerance), ctx.words * (1 + self.settings.length_tolerance)
        while (count_words(draft.text) < low and draft.continuations < self.settings.max_continuations
               and not self.settings.fixed_tokens):
            tail = tail_tokens(draft.text, 200, self.count_tokens)
            missing = ctx.words - count_words(draft.text)
            more = yield ChatRequest(messages=self._messages(user), prefill=tail + " ", avoid=plan.avoid,
                                     sampling=self._sampling(missing, plan, draft.continuations + 1, ratio.value))
            if count_words(more.text) == 0:
                break
            ratio.observe(more.completion_tokens, more.text)
            draft.text = (draft.text + " " + clean_section_text(more.text, ctx.section_title)).strip()
            draft.continuations += 1
            draft.prompt_tokens += more.prompt_tokens
            draft.completion_tokens += more.completion_tokens
        if not self.settings.fixed_tokens:
            draft.text = trim_to_words(drop_unfinished_tail(draft.text), int(high))
        return draft

    def _accepted(self) -> dict[str, str]:
        """Finished sections by title, as the checker compares against them."""
        accepted: dict[str, str] = {}
        for sid, done in self.texts.items():
            accept(accepted, self.outline.find(sid).title, sid, done)
        return accepted

    def _retold(self, scores: Scores) -> str:
        """The earlier section a rejected draft repeated, for the rewrite to avoid: its words get
        the repetition penalty as if already written, which steers the model to new material."""
        if not (self.settings.avoid_retelling and self.checker.repeated(scores) and scores.closest):
            return ""
        return self._accepted().get(scores.closest, "")

    def _score(self, text: str, ctx: SectionContext):
        """Checker scores (computed off the event loop), plus the optional yes/no judgement
        from the model itself."""
        accepted = self._accepted()  # taken now: other sections may finish while it runs
        scores = yield Compute(lambda: self.checker.score(text, topic=self.outline.topic, title=ctx.section_title,
                                                          brief=ctx.brief, budget=ctx.words, accepted=accepted))
        if self.settings.judge:
            user = self.prompts.render("judge", topic=self.outline.topic, section_title=ctx.section_title,
                                       brief=ctx.brief, text=head_tokens(text, 600, self.count_tokens))
            verdict = yield ChatRequest(messages=self._messages(user),
                                        sampling=Sampling(max_new_tokens=3, temperature=0.0))
            scores.judge = not verdict.text.strip().lower().startswith("no")
            scores.problems = self.checker.problems(scores, topic=self.outline.topic, title=ctx.section_title,
                                                    brief=ctx.brief)
        return scores

    def _summary(self, section_id: str, text: str, ctx: SectionContext):
        """Rolling summary (chain so far + this section), only when a later section reads it."""
        if self.settings.summarize == "needed" and not any(True for _ in self.contexts.graph.successors(section_id)):
            return ""
        prev = previous_in_chain(self.contexts.graph, section_id)
        user = self.prompts.render(
            "summary", previous=head_tokens(self.summaries.get(prev, ""), 160, self.count_tokens) if prev else "",
            section_title=ctx.section_title, text=head_tokens(text, 500, self.count_tokens),
            words=self.settings.summary_words,
        )
        n = self.settings.fixed_tokens or math.ceil(self.settings.summary_words * self.tokens_per_word) + 8
        done = yield ChatRequest(messages=self._messages(user), sampling=Sampling(
            max_new_tokens=n, min_new_tokens=n if self.settings.fixed_tokens else 0,
            temperature=0.3, seed=self._seed(section_id, 0, -1)))
        return drop_unfinished_tail(done.text.strip())
