"""Hybrid retrieval over passages: lexical BM25 (bm25s; English words, CJK character bigrams)
and the checker's MiniLM embeddings, fused by reciprocal rank. Either side alone misses what
the other finds: BM25 names and numbers, embeddings paraphrase."""

from __future__ import annotations

import re

import numpy as np

from .chunk import Passage

RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al. 2009)
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_WORD = re.compile(r"[^\W_]+")


def lexical_tokens(text: str) -> list[str]:
    """BM25 terms: lower-cased words outside CJK runs, and each CJK run's character bigrams
    (its single character when alone): Chinese needs no segmenter this way."""
    tokens = []
    for word in _WORD.findall(_CJK_RUN.sub(" ", text).lower()):
        tokens.append(word)
    for run in _CJK_RUN.findall(text):
        tokens += [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    return tokens


class Retriever:
    """Ranks a fixed set of passages for a query. ``vectors`` are the passages' embeddings
    (one normalised row each) from ``embedder``."""

    def __init__(self, passages: list[Passage], vectors: np.ndarray, embedder) -> None:
        import bm25s

        self.passages, self.vectors, self.embedder = passages, vectors, embedder
        self.bm25 = bm25s.BM25()
        self.bm25.index([lexical_tokens(p.index_text()) or ["\x00"] for p in passages], show_progress=False)

    def search(self, query: str, k: int = 5, min_cosine: float = -1.0) -> list[tuple[Passage, float]]:
        """The ``k`` best passages with their fused scores, best first; with ``min_cosine``,
        only passages whose embedding is at least that close to the query's (rank fusion
        alone always fills ``k``, with other subjects' passages when few are relevant)."""
        lexical = self.bm25.get_scores(lexical_tokens(query))
        dense = self.vectors @ self.embedder.encode([query])[0]
        fused = _rrf(lexical) + _rrf(dense)
        order = [i for i in np.argsort(-fused, kind="stable") if dense[i] >= min_cosine][:k]
        return [(self.passages[i], float(fused[i])) for i in order]


def _rrf(scores: np.ndarray) -> np.ndarray:
    """Each item's reciprocal-rank contribution 1 / (RRF_K + rank) by ``scores`` (rank 1 best);
    items that score nothing (no shared term) contribute nothing."""
    ranks = np.empty(len(scores))
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return np.where(scores > 0, 1.0 / (RRF_K + ranks), 0.0)
