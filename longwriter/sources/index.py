"""The source index of a run: every usable file's passages and their embeddings, kept in a
folder (the run directory's ``sources/``) by content hash, so a resumed or repeated run
re-reads and re-embeds only the files that changed."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from .chunk import Passage, chunk
from .read import Notify, Unusable, collect, read_blocks
from .retrieve import Retriever

FORMAT = 1  # bump when chunking changes: older cached passages are then rebuilt
# A prompt shows a passage only this close to its query (MiniLM cosine). On the test corpus's
# labelled queries the answering subject's passages score 0.27-0.86 and other subjects' at most
# 0.27 (README): without a floor a bee section was shown lighthouse passages and wrote of them.
MIN_PASSAGE_COSINE = 0.28


class SourceIndex:
    """Passages of the user's sources, ready for retrieval."""

    def __init__(self, passages: list[Passage], vectors: np.ndarray, embedder) -> None:
        self.passages, self.vectors = passages, vectors
        self.retriever = Retriever(passages, vectors, embedder)

    @classmethod
    def build(cls, paths: list[str | Path], folder: str | Path, embedder, notify: Notify) -> SourceIndex:
        """Index the files ``paths`` name, reusing ``folder``'s cached passages for unchanged
        ones. No usable text at all is an InputError (exit 5)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        passages, vectors = [], []
        for path, name in collect(paths, notify):
            got = _file(path, name, folder, embedder, notify)
            if got:
                passages += got[0]
                vectors.append(got[1])
        if not passages:
            raise InputError("the sources hold no usable text (see the lines above); pass readable "
                             ".md, .txt, .html, .pdf or .docx files")
        return cls(passages, np.concatenate(vectors), embedder)

    def search(self, query: str, k: int = 5, min_cosine: float = -1.0) -> list[tuple[Passage, float]]:
        return self.retriever.search(query, k, min_cosine)

    def planning_lines(self, topic: str, count, budget: int) -> list[str]:
        """What the planner is shown, within ``budget`` tokens: the sources' headings (each file
        and heading path once), then the passages that best match the topic."""
        heads = dict.fromkeys(f"- {p.source}" + (f": {' > '.join(p.headings)}" if p.headings else "")
                              for p in self.passages)
        lines, used = [], 0
        for line in [*heads, *(f"> {p.text}" for p in self.best(topic, count, budget // 2, k=4))]:
            if used + count(line) > budget:
                break
            lines.append(line)
            used += count(line)
        return lines

    def best(self, query: str, count, budget: int, k: int = 8) -> list[Passage]:
        """The best passages for ``query`` that fit ``budget`` tokens together (by ``count``),
        best first, each at least MIN_PASSAGE_COSINE close to it: a prompt's sources stay
        bounded however large the source set is, and hold nothing off the subject."""
        chosen, used = [], 0
        for passage, _ in self.search(query, k, MIN_PASSAGE_COSINE):
            n = count(passage.text)
            if used + n <= budget:
                chosen.append(passage)
                used += n
        return chosen


def _file(path: Path, name: str, folder: Path, embedder, notify: Notify):
    """(passages, vectors) of one file, from the cache when its content is unchanged."""
    try:
        data = path.read_bytes()
    except OSError as err:
        notify(f"source '{name}': cannot be read ({err.strerror}); skipped")
        return None
    key = hashlib.sha256(data + f"|{FORMAT}|{embedder.name}|{name}".encode()).hexdigest()[:32]
    cached = _load(folder, key)
    if cached:
        return cached
    try:
        passages = chunk(read_blocks(path), name)
    except Unusable as why:
        notify(f"source '{name}': {why}; skipped")
        return None
    if not passages:
        notify(f"source '{name}': no text found; skipped")
        return None
    vectors = embedder.encode([p.index_text() for p in passages]).astype(np.float32)
    _save(folder, key, passages, vectors)
    return passages, vectors


def _load(folder: Path, key: str):
    try:
        rows = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        vectors = np.load(folder / f"{key}.npy")
        passages = [Passage.model_validate(r) for r in rows]
    except (OSError, ValueError):
        return None  # not cached, or a damaged cache entry: rebuilt
    return (passages, vectors) if len(passages) == len(vectors) else None


def _save(folder: Path, key: str, passages: list[Passage], vectors: np.ndarray) -> None:
    """Vectors first, passages last, each atomically: a cache entry is whole or absent."""
    _atomic(folder / f"{key}.npy", lambda f: np.save(f, vectors))
    rows = json.dumps([p.model_dump() for p in passages], ensure_ascii=False)
    _atomic(folder / f"{key}.json", lambda f: f.write(rows.encode("utf-8")))


def _atomic(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
