"""Windowed context for one section: a window of the outline, the rolling summaries of the
sections it depends on, and the tail of the section it continues. Never the whole document:
every piece is bounded, so the prompt does not grow with the document's length."""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
from pydantic import BaseModel

from . import citations
from .graph import previous_in_chain
from .length import count_words, split_sentences
from .outline import Outline

Counter = Callable[[str], int]

OUTLINE_WINDOW = 2  # outline rows shown on each side of the current section (neighbours matter most)
CHAPTER_TOKENS = 160  # the whole document's chapter titles, condensed: what the other chapters cover
CHAPTER_TITLE_WORDS = 6  # each title cut to this many words when all of them do not fit


class SectionContext(BaseModel):
    """Everything the section prompt shows the model (all fields bounded)."""

    id: str
    number: str
    section_title: str
    chapter: str
    brief: str
    words: int
    outline: list[str]
    chapters: list[str] = []
    sources: list[str] = []  # the passages of the user's sources shown, cited as [1], [2], ...
    source_labels: list[str] = []  # where each comes from (file, heading or page), same order
    summary: str = ""
    tail: str = ""
    contains: list[str] = []  # what the section may hold besides prose (its template's choice)


def outline_window(outline: Outline, current: str, radius: int = OUTLINE_WINDOW) -> list[str]:
    """Numbered outline lines near ``current`` (marked), with '...' where lines are left out."""
    rows = [(s.id, "  " * (len(num) - 1) + ".".join(map(str, num)) + " " + s.title) for num, s in outline.walk()]
    at = next(i for i, (sid, _) in enumerate(rows) if sid == current)
    lo, hi = max(0, at - radius), min(len(rows), at + radius + 1)
    lines = [text + ("   <- this section" if sid == current else "") for sid, text in rows[lo:hi]]
    return (["..."] if lo > 0 else []) + lines + (["..."] if hi < len(rows) else [])


def chapter_titles(outline: Outline, current: str, count: Counter, limit: int = CHAPTER_TOKENS) -> list[str]:
    """Every top-level title, numbered, so a section knows what the other chapters will cover;
    empty when the outline window already shows them all. Within ``limit`` tokens: titles are
    cut short first, then the chapters farthest from the current one give way to '...'."""
    if "..." not in outline_window(outline, current):
        return []
    rows = [f"{i} {s.title}" for i, s in enumerate(outline.sections, 1)]
    if count("; ".join(rows)) > limit:
        rows = [" ".join(r.split()[: CHAPTER_TITLE_WORDS + 1]) for r in rows]
    at = next(i for i, s in enumerate(outline.sections) if current in (s.id, *outline.leaf_ids_under(s.id)))
    lo, hi = at, at + 1
    while (lo > 0 or hi < len(rows)) and count("; ".join(rows[max(0, lo - 1): hi + 1])) <= limit:
        lo, hi = max(0, lo - 1), min(len(rows), hi + 1)
    return (["..."] if lo > 0 else []) + rows[lo:hi] + (["..."] if hi < len(rows) else [])


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


def net_words(budget: int, owed: int) -> int:
    """A section's words of prose: its budget less what it owes to headings and References
    entries (at most half of it)."""
    return max(budget - owed, (budget + 1) // 2)


def owed_words(outline: Outline, labels: dict[str, list[str]]) -> dict[str, int]:
    """Words each leaf's budget owes to what the document prints besides prose: the headings
    before it, and the References entries its passages (``labels``, by leaf id) may add (each
    source once, the heading with the first). The whole response counts, as LongBench-Write
    counts it; every entry shown is reserved, since attached citations cite most of them."""
    owed, seen = dict(outline.heading_words()), set()
    heading = count_words(citations.heading_for(outline.language))
    for leaf in outline.leaves():
        new = [label for label in dict.fromkeys(labels.get(leaf.id, [])) if label not in seen]
        owed[leaf.id] += sum(count_words(f"{len(seen) + i}. {label}") for i, label in enumerate(new, 1))
        owed[leaf.id] += heading if new and not seen else 0
        seen.update(new)
    return owed


class ContextBuilder:
    """Builds :class:`SectionContext` objects with fixed token allowances for each piece."""

    def __init__(self, outline: Outline, graph: nx.DiGraph, count: Counter, summary_tokens: int = 160,
                 tail_tokens: int = 160, passages: dict | None = None) -> None:
        self.outline, self.graph, self.count = outline, graph, count
        self.passages = passages or {}  # section id -> the source passages it is shown (grounding)
        self.summary_tokens, self.tail_tokens = summary_tokens, tail_tokens
        self.numbers = {s.id: ".".join(map(str, num)) for num, s in outline.walk()}
        self.chapter_of = {leaf: top.title for top in outline.sections for leaf in outline.leaf_ids_under(top.id)}
        self.owed = owed_words(outline, {k: [p.label() for p in v] for k, v in self.passages.items()})

    def words(self, node) -> int:
        """The prose a leaf is asked for: headings and References entries count towards the
        document's length."""
        return net_words(node.words, self.owed.get(node.id, 0))

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
            words=self.words(node), outline=outline_window(self.outline, section_id),
            chapters=chapter_titles(self.outline, section_id, self.count), summary=summary, tail=tail,
            sources=[p.text for p in self.passages.get(section_id, [])],
            source_labels=[p.label() for p in self.passages.get(section_id, [])],
            contains=[element for element in node.contains if element != "prose"],
        )
