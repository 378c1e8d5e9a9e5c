"""The outline: the document's metadata and a tree of sections, each with a brief and a word
budget. It is the hand-off between the planner, the user's editor and the writer.

Budgets flow top-down: the document's ``words`` is the target, and every parent's budget is
split among its children in proportion to their own ``words``. Editing a parent's budget
therefore rescales its children, and leaf budgets always sum to the document's target."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import OutlineError

_ID = r"^[^\s]{1,80}$"


class Section(BaseModel):
    """One node of the outline. Only leaves are written; a parent is a heading over its children."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    brief: str = ""
    words: int = Field(gt=0)
    depends_on: list[str] = Field(default_factory=list)
    children: list[Section] = Field(default_factory=list)

    def content_hash(self) -> str:
        """Hash of what the writer reads from this node (resume rewrites a section when it changes)."""
        payload = {"title": self.title, "brief": self.brief, "words": self.words, "deps": self.depends_on}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class Outline(BaseModel):
    """A whole document plan."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    audience: str = "general readers"
    style: str = "clear, informative prose"
    language: str = "en"
    words: int = Field(gt=0)
    sections: list[Section] = Field(min_length=1)

    def walk(self) -> Iterator[tuple[tuple[int, ...], Section]]:
        """Yield (number path, section) for every node, depth-first in document order."""

        def visit(nodes: list[Section], prefix: tuple[int, ...]):
            for i, node in enumerate(nodes, 1):
                yield prefix + (i,), node
                yield from visit(node.children, prefix + (i,))

        yield from visit(self.sections, ())

    def leaves(self) -> list[Section]:
        """The sections that get written, in document order."""
        return [s for _, s in self.walk() if not s.children]

    def find(self, section_id: str) -> Section:
        """The section with this id (KeyError if none)."""
        for _, s in self.walk():
            if s.id == section_id:
                return s
        raise KeyError(section_id)

    def leaf_ids_under(self, section_id: str) -> list[str]:
        """Ids of the leaves at or below ``section_id``."""
        node = self.find(section_id)
        if not node.children:
            return [node.id]
        return [leaf for child in node.children for leaf in self.leaf_ids_under(child.id)]


def distribute(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` into positive integers that sum exactly to
    ``total`` (largest-remainder rounding; every share at least 1)."""
    if total < len(weights):
        raise OutlineError(f"a budget of {total} words cannot be split over {len(weights)} sections")
    scale = sum(weights)
    raw = [max(total * w / scale, 1.0) for w in weights]
    shares = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - shares[i], reverse=True)
    i = 0
    while sum(shares) != total:
        j = by_remainder[i % len(raw)]
        step = 1 if sum(shares) < total else -1
        if shares[j] + step >= 1:
            shares[j] += step
        i += 1
    return shares


def rebalance(outline: Outline) -> Outline:
    """Return a copy whose budgets flow top-down from ``outline.words`` (see module doc)."""
    copy = outline.model_copy(deep=True)

    def push(nodes: list[Section], total: int) -> None:
        for node, share in zip(nodes, distribute(total, [n.words for n in nodes])):
            node.words = share
            if node.children:
                push(node.children, share)

    push(copy.sections, copy.words)
    return copy


# ---------------------------------------------------------------- validation


def _describe(loc: tuple[Any, ...], raw: Any) -> str:
    """Turn a pydantic error location into 'section 'intro', field 'words'' using the raw data."""
    where, node, field = "document", raw, None
    for part in loc:
        if isinstance(node, dict) and part in ("sections", "children"):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            sid = node.get("id") if isinstance(node, dict) else None
            where = f"section '{sid}'" if sid else f"section #{part + 1} (no id)"
        else:
            field = part
            break
    return f"{where}, field '{field}'" if field is not None else where


def _one_line(err: ValidationError, raw: Any) -> str:
    first = err.errors()[0]
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field (allowed: id, title, brief, words, depends_on, children)"
        if len(first["loc"]) == 1:
            msg = "unknown field (allowed: title, topic, audience, style, language, words, sections)"
    extra = f" (and {len(err.errors()) - 1} more problems)" if len(err.errors()) > 1 else ""
    return f"{_describe(first['loc'], raw)}: {msg}{extra}"


def check_consistency(outline: Outline) -> None:
    """Refuse duplicate ids, dependencies on unknown sections, and dependency cycles."""
    seen: set[str] = set()
    for _, s in outline.walk():
        if s.id in seen:
            raise OutlineError(f"section '{s.id}', field 'id': duplicate id")
        seen.add(s.id)
    deps = nx.DiGraph()
    for _, s in outline.walk():
        for dep in s.depends_on:
            if dep not in seen:
                raise OutlineError(f"section '{s.id}', field 'depends_on': unknown section '{dep}'")
            for target in outline.leaf_ids_under(s.id):
                deps.add_edges_from((src, target) for src in outline.leaf_ids_under(dep))
    try:
        cycle = nx.find_cycle(deps)
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join([cycle[0][0]] + [v for _, v in cycle])
    raise OutlineError(f"section '{cycle[0][1]}', field 'depends_on': dependency cycle {path}")


def parse_outline(raw: Any) -> Outline:
    """Validate plain data (as read from YAML) into a consistent, rebalanced outline."""
    if not isinstance(raw, dict):
        raise OutlineError("the outline must be a mapping with title, topic, words and sections")
    try:
        outline = Outline.model_validate(raw)
    except ValidationError as err:
        raise OutlineError(_one_line(err, raw)) from None
    check_consistency(outline)
    return rebalance(outline)


# ---------------------------------------------------------------- YAML I/O


def load_outline(path: str | Path) -> Outline:
    """Read and validate an outline YAML file; every problem is an :class:`OutlineError`."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise OutlineError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise OutlineError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise OutlineError(f"{path}: cannot read ({err.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise OutlineError(f"{path}: malformed YAML{where}: {problem}") from None
    try:
        return parse_outline(raw)
    except OutlineError as err:
        raise OutlineError(f"{path}: {err}") from None


def _section_data(s: Section) -> dict[str, Any]:
    data: dict[str, Any] = {"id": s.id, "title": s.title, "brief": s.brief, "words": s.words}
    if s.depends_on:
        data["depends_on"] = list(s.depends_on)
    if s.children:
        data["children"] = [_section_data(c) for c in s.children]
    return data


def dump_outline(outline: Outline) -> str:
    """The outline as YAML for a person to edit (fields in reading order, unicode kept)."""
    data = outline.model_dump(exclude={"sections"})
    data["sections"] = [_section_data(s) for s in outline.sections]
    header = (
        "# longwriter outline: edit titles, briefs, budgets (words) and depends_on, then run\n"
        "#   longwriter expand <this file> --out DIR\n"
        "# A parent's words are split among its children in proportion to theirs.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def slugify(text: str, fallback: str) -> str:
    """A file-name-safe slug (ASCII letters, digits, dashes), or ``fallback`` when none is left.
    Used for every file name made from an id, so an id like '../../etc/x' cannot escape."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-")
    return slug or fallback
