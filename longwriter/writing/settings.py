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

    temperature: float | None = Field(None, ge=0.0, le=2.0, description="None: the model's recommended "
                                      "(its generation config), else defaults.TEMPERATURE")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="None: the model's recommended, else 0.9")
    repetition_penalty: float = Field(defaults.REPETITION_PENALTY, ge=1.0, le=2.0)
    seed: int = Field(0, ge=0, le=defaults.MAX_SEED)
    length_tolerance: float = Field(0.10, ge=0.0, le=0.9,
                                    description="accepted shortfall as a share of the budget (a longer "
                                    "draft is cut back to the sentence boundary nearest the budget)")
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


    def with_model_defaults(self, recommended: dict[str, float]) -> WriterSettings:
        """These settings with every sampling option left unset taken from the model's own
        recommendation (``Backend.recommended``), else from longwriter's default."""
        fallback = {"temperature": defaults.TEMPERATURE, "top_p": defaults.TOP_P}
        return self.model_copy(update={k: recommended.get(k, fallback[k]) for k in fallback
                                       if getattr(self, k) is None})


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
    sources: list[str] = Field(default_factory=list, description="labels of the source passages its "
                               "prompt showed: its [n] cites the n-th")
    attributed: int = Field(0, description="citations longwriter attached to sentences a shown passage "
                            "supports (the model's own citations not counted)")
    passages: list[str] = Field(default_factory=list, description="the source passages its prompt showed, "
                                "in order (what `check` scores its grounding against)")
    removed: list[str] = Field(default_factory=list, description="wrapper text cut from its drafts (\"Here "
                               "is...\", sign-offs), each piece at most 200 characters")
