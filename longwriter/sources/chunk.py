"""Cutting a source's blocks into passages by structure: paragraphs under one heading (and on
one page) are joined up to about 300 tokens, a long paragraph is split at sentence ends, and a
passage never spans two sections. Sizes are counted as everywhere else (a CJK character is a
word), so Chinese text gets passages of a similar size in tokens."""

from __future__ import annotations

from pydantic import BaseModel

from ..length import count_words, split_sentences
from .read import Block

CHUNK_WORDS = (110, 230)  # counted words a passage aims at (about 150-300 tokens)


class Passage(BaseModel):
    """One retrievable piece of a source."""

    source: str  # the file's name as cited (relative to the folder given)
    headings: list[str] = []
    page: int | None = None
    text: str

    def label(self) -> str:
        """How the References list names it: file, then heading path or page."""
        where = " > ".join(self.headings) or (f"p. {self.page}" if self.page else "")
        return f"{self.source}, {where}" if where else self.source

    def index_text(self) -> str:
        """What retrieval reads: the heading path, then the text."""
        return "\n".join([" > ".join(self.headings), self.text]).strip()


def chunk(blocks: list[Block], source: str) -> list[Passage]:
    """Passages of one file's blocks, in order."""
    out: list[Passage] = []
    for headings, page, texts in _sections(blocks):
        for text in _pack(_pieces(texts)):
            out.append(Passage(source=source, headings=list(headings), page=page, text=text))
    return out


def _sections(blocks: list[Block]):
    """Runs of blocks that share a heading path and page."""
    run: list[str] = []
    key = None
    for block in blocks:
        if key is not None and (block.headings, block.page) != key:
            yield (*key, run)
            run = []
        key = (block.headings, block.page)
        run.append(block.text)
    if run:
        yield (*key, run)


def _pieces(texts: list[str]) -> list[str]:
    """Paragraphs, each longer one split into runs of whole sentences within the maximum."""
    out = []
    for text in texts:
        if count_words(text) <= CHUNK_WORDS[1]:
            out.append(text)
            continue
        run, size = [], 0
        for sentence in split_sentences(text):
            n = count_words(sentence)
            if run and size + n > CHUNK_WORDS[1]:
                out.append("".join(run).strip())
                run, size = [], 0
            run.append(sentence)
            size += n
        if run:
            out.append("".join(run).strip())
    return out


def _pack(pieces: list[str]) -> list[str]:
    """Consecutive pieces joined while the passage stays within the maximum."""
    out, run, size = [], [], 0
    for piece in pieces:
        n = count_words(piece)
        if run and size + n > CHUNK_WORDS[1] and size >= CHUNK_WORDS[0] // 2:
            out.append("\n\n".join(run))
            run, size = [], 0
        run.append(piece)
        size += n
    if run:
        out.append("\n\n".join(run))
    return out
