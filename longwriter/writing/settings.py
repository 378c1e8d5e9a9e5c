"""How sections are written, and what a finished section is."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import defaults
from ..checker import Scores


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
    max_attempts: int = Field(defaults.MAX_ATTEMPTS, ge=1, le=10,
                              description="drafts per section when the checker is on (1 = no rewrites)")
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
