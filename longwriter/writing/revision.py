"""The rewrite policy: when a rejected draft is rewritten, with what, and which draft is kept."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..checker import Checker, Scores
from .settings import WriterSettings

LOOP_PENALTY_BOOST = 0.1  # added to the repetition penalty of a rewrite of a draft that looped


class Attempt(BaseModel):
    """What one draft of a section is asked for: the first has no feedback, rewrites do."""

    section_id: str
    number: int = 0
    feedback: list[str] = Field(default_factory=list)
    avoid: str = ""
    penalty_boost: float = 0.0


def best_attempt(attempts: list[tuple[object, Scores | None]]) -> tuple[object, Scores | None]:
    """The draft to keep: one that passes the checker beats one that does not (a rewrite that
    fixed the repetition wins even if the copy read as more on-topic); among equals, the
    higher quality score; on a tie, the earlier draft."""
    return max(attempts, key=lambda a: (a[1].passed, a[1].quality()) if a[1] else (True, 0.0))


class RevisionPolicy:
    """Decides each rewrite of a rejected draft."""

    def __init__(self, checker: Checker, settings: WriterSettings) -> None:
        self.checker, self.settings = checker, settings

    def next(self, previous: Attempt, scores: Scores, feedback: list[str], accepted: dict[str, str]) -> Attempt:
        """The rewrite of a rejected draft: its problems as feedback, the next number (so a new
        seed), the words of a section it retold to avoid, and a higher repetition penalty only
        when it looped (the penalty also covers the prompt's topic words, so raising it
        otherwise pushes the rewrite off-topic; measured on the embedded model)."""
        boost = LOOP_PENALTY_BOOST if self.checker.looped(scores) else 0.0
        return Attempt(section_id=previous.section_id, number=previous.number + 1, feedback=feedback,
                       avoid=self.retold(scores, accepted), penalty_boost=previous.penalty_boost + boost)

    def retold(self, scores: Scores, accepted: dict[str, str]) -> str:
        """The earlier section a rejected draft repeated, for the rewrite to avoid: its words get
        the repetition penalty as if already written, which steers the model to new material."""
        if not (self.settings.avoid_retelling and self.checker.repeated(scores) and scores.closest):
            return ""
        return accepted.get(scores.closest, "")

