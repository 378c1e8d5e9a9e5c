"""Sampling parameters for each request, and each request's own seed."""

from __future__ import annotations

import math
import zlib

from ..backends.base import Sampling
from .settings import WriterSettings

SUMMARY_TEMPERATURE = 0.3  # summaries should be faithful, not creative
JUDGE_TOKENS = 3  # "yes" or "no"


class SamplingPolicy:
    """Turns a word budget into token limits and gives every request a seed of its own."""

    def __init__(self, settings: WriterSettings, language: str = "") -> None:
        self.settings, self.language = settings, language  # prose and summaries in its script

    def seed(self, section_id: str, attempt: int, step: int) -> int:
        """A request's own seed: its text then depends on its prompt and seed only, not on the
        requests it shares a batch with (runs are reproducible, checker on/off comparable)."""
        return zlib.crc32(f"{self.settings.seed}/{section_id}/{attempt}/{step}".encode())

    def prose(self, words: int, section_id: str, attempt: int, step: int, ratio: float,
              penalty_boost: float = 0.0) -> Sampling:
        """For ``words`` of prose at ``ratio`` tokens per word: at most the budget plus the
        tolerance (and a few tokens to finish a sentence), at least the budget less it."""
        s = self.settings
        words = max(1, words)  # a request always asks for something, whatever its caller computed
        if s.fixed_tokens:
            n = lo = s.fixed_tokens
        else:
            n = min(s.max_request_tokens, math.ceil(words * ratio * (1 + s.length_tolerance)) + 8)
            lo = min(n, int(words * ratio * (1 - s.length_tolerance)))
        return Sampling(max_new_tokens=n, min_new_tokens=lo, temperature=s.temperature, top_p=s.top_p,
                        repetition_penalty=s.repetition_penalty + penalty_boost,
                        seed=self.seed(section_id, attempt, step), script=self.language)

    def summary(self, section_id: str, ratio: float) -> Sampling:
        n = self.settings.fixed_tokens or math.ceil(self.settings.summary_words * ratio) + 8
        return Sampling(max_new_tokens=n, min_new_tokens=n if self.settings.fixed_tokens else 0,
                        temperature=SUMMARY_TEMPERATURE, seed=self.seed(section_id, 0, -1), script=self.language)

    @staticmethod
    def judge() -> Sampling:
        return Sampling(max_new_tokens=JUDGE_TOKENS, temperature=0.0)
