"""Windowed context for one section: a window of the outline, the rolling summaries of the
sections it depends on, and the tail of the section it continues. Never the whole document:
every piece is bounded, so the prompt does not grow with the document's length."""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
from pydantic import BaseModel

from .graph import previous_in_chain
from .length import split_sentences
from .outline import Outline

Counter = Callable[[str], int]

OUTLINE_WINDOW = 2  # outline rows shown on each side of the current section (neighbours matter most)


class SectionContext(BaseModel):
    """Everything the section prompt shows the model (all fields bounded)."""

    id: str
    number: str
    section_title: str
    chapter: str
    brief: str
    words: int
    outline: list[str]
    summary: str = ""
    tail: str = ""


def outline_window(outline: Outline, current: str, radius: int = OUTLINE_WINDOW) -> list[str]:
    """Numbered outline lines near ``current`` (marked), with '...' where lines are left out."""
    rows = [(s.id, "  " * (len(num) - 1) + ".".join(map(str, num)) + " " + s.title) for num, s in outline.walk()]
    at = next(i for i, (sid, _) in enumerate(rows) if sid == current)
    lo, hi = max(0, at - radius), min(len(rows), at + radius + 1)
    lines = [text + ("   <- this section" if sid == current else "") for sid, text in rows[lo:hi]]
    return (["..."] if lo > 0 else []) + lines + (["..."] if hi < len(rows) else [])


def head_tokens(text: str, limit: int, count: Counter) -> str:
    """The longest prefix of whole sentences within ``limit`` tokens (a word cut if none fits)."""
    if count(text) <= limit:
        return text
    kept: list[str] = []
    for sentence in split_sentences(text):
        if count("".join(kept + [sentence])) > limit:
            break
        kept.append(sentence)
    return "".join(kept).strip() or _cut_words(text, limit, count, from_end=False)


def tail_tokens(text: str, limit: int, count: Counter) -> str:
    """The longest suffix of whole sentences within ``limit`` tokens (a word cut if none fits)."""
    if count(text) <= limit:
        return text.strip()
    kept: list[str] = []
    for sentence in reversed(split_sentences(text)):
        if count("".join([sentence] + kept)) > limit:
            break
        kept.insert(0, sentence)
    return "".join(kept).strip() or _cut_words(text, limit, count, from_end=True)


def _cut_words(text: str, limit: int, count: Counter, from_end: bool) -> str:
    words = text.split()
    n = len(words)
    while n > 0:
        piece = " ".join(words[-n:] if from_end else words[:n])
        if count(piece) <= limit:
            return piece
        n = int(n * 0.8)
    return ""


class ContextBuilder:
    """Builds :class:`SectionContext` objects with fixed token allowances for each piece."""

    def __init__(self, outline: Outline, graph: nx.DiGraph, count: Counter, summary_tokens: int = 160,
                 tail_tokens: int = 160) -> None:
        self.outline, self.graph, self.count = outline, graph, count
        self.summary_tokens, self.tail_tokens = summary_tokens, tail_tokens
        self.numbers = {s.id: ".".join(map(str, num)) for num, s in outline.walk()}
        self.chapter_of = {leaf: top.title for top in outline.sections for leaf in outline.leaf_ids_under(top.id)}

    def build(self, section_id: str, texts: dict[str, str], summaries: dict[str, str]) -> SectionContext:
        """Context for ``section_id`` given the finished sections' texts and rolling summaries."""
        node = self.outline.find(section_id)
        deps = sorted(self.graph.predecessors(section_id), key=lambda n: self.graph.nodes[n]["order"])
        share = self.summary_tokens // max(1, len(deps))
        summary = " ".join(head_tokens(summaries.get(d, ""), share, self.count) for d in deps).strip()
        prev = previous_in_chain(self.graph, section_id)
        tail = tail_tokens(texts.get(prev, ""), self.tail_tokens, self.count) if prev else ""
        chapter = self.chapter_of.get(section_id, "")
        return SectionContext(
            id=section_id, number=self.numbers[section_id], section_title=node.title,
            chapter="" if chapter == node.title else chapter, brief=node.brief or node.title,
            words=node.words, outline=outline_window(self.outline, section_id), summary=summary, tail=tail,
        )
