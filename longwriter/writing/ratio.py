"""Tokens per counted word: budgets are in words (or CJK characters), engines count tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..length import count_words

# Calibration text for the tokens-per-word ratio of the model in use (per language).
SAMPLES = {
    "en": ("Coffee reached Europe in the seventeenth century, when merchants from Venice brought beans "
           "from the Ottoman ports. Within decades, coffeehouses had become places where people read "
           "newspapers, argued about politics and signed contracts, and the drink shaped daily life."),
    "zh": ("咖啡在十七世纪传入欧洲，威尼斯商人从奥斯曼帝国的港口带回了咖啡豆。几十年内，咖啡馆成为人们"
           "读报、讨论政治和签订合同的场所，这种饮品深刻地改变了日常生活。"),
}


def reference_ratio(count_tokens: Callable[[str], int], language: str) -> float:
    """The tokenizer's tokens per word on a reference paragraph of the document's language.
    A constant of the model and language: never of which sections finished first, nor of a
    resume (each section then refines it from its own output only, see TokenRatio)."""
    sample = SAMPLES["zh" if language.startswith("zh") else "en"]
    return max(0.5, count_tokens(sample) / count_words(sample))


@dataclass
class TokenRatio:
    """Tokens per counted word, learned from one section's own output: the reference ratio is
    the prior, worth ``weight`` words (models write numbers, names and markup the sample lacks)."""

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
