"""The outline: the document's metadata and a tree of sections, each with a brief and a word
budget. It is the hand-off between the planner, the user's editor and the writer.

Budgets flow top-down: the document's ``words`` is the target, and every parent's budget is
split among its children in proportion to their own ``words``. Editing a parent's budget
therefore rescales its children, and leaf budgets always sum to the document's target.

The file is hand-edited, so the loader trusts nothing in it: every size is bounded before the
work that size would drive (reading, parsing, validating, rebalancing), YAML is read with the
1.2 core schema and refuses duplicate keys, and every problem is a one-line OutlineError."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from .length import count_words
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import defaults
from .errors import OutlineError
from .files import NotRegularFile, TooLarge, read_regular

# ---------------------------------------------------------------- limits
# Public so the planner and the CLI can apply the same bounds to what they build.

MAX_OUTLINE_BYTES = 2 * 1024 * 1024  # a real outline is a few KiB; read no more than this
MAX_YAML_DEPTH = 64  # nested YAML collections (an outline at MAX_DEPTH needs about 11)
MAX_YAML_NODES = 50_000  # YAML values once aliases are expanded, keys included (a full outline: ~30,000)
MAX_DEPTH = 5  # levels of sections: ## for the top level, ###### for the fifth
MAX_SECTIONS = 2_000  # nodes of the tree, parents included
MAX_LEAVES = 1_000  # sections that get written
MAX_WORDS = defaults.MAX_WORDS  # document target (the CLI caps --words at the same value)
MIN_LEAF_WORDS = 10  # smallest budget worth a model call
MAX_ID_CHARS = 80
MAX_TITLE_CHARS = 300
MAX_TOPIC_CHARS = 2_000  # same as the planner's limit on --topic
MAX_BRIEF_CHARS = 2_000  # also bounds audience and style, which go into every prompt
MAX_LANGUAGE_CHARS = 35  # a language tag such as "en" or "zh-Hans-CN"
MAX_DEPENDS_ON = 50  # entries in one section's depends_on
MAX_DEPENDENCIES = 1_000  # depends_on entries in the whole outline
MAX_DEPENDENCY_PAIRS = 100_000  # (leaf, leaf) edges those entries expand to in the writer's graph

_ID = rf"^[^\s]{{1,{MAX_ID_CHARS}}}$"
ELEMENTS = ("prose", "list", "table", "code", "math", "mermaid")  # what a section may contain
Element = Literal["prose", "list", "table", "code", "math", "mermaid"]
# id -> number path where Outline.find last saw it (shared by all outlines: a hint, checked on use)
_FIND_HINTS: dict[str, tuple[int, ...]] = {}
_MAX_FIND_HINTS = 10_000


class Section(BaseModel):
    """One node of the outline. Only leaves are written; a parent is a heading over its children."""

    # strict: a hand-edited 'words: "600"' or 'title: 12' is refused rather than coerced
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    brief: str = ""
    words: int = Field(gt=0)
    depends_on: list[str] = Field(default_factory=list)
    # What the section may hold besides prose (a template's choice): list, table, code, math, mermaid.
    contains: list[Element] = Field(default_factory=list)
    children: list[Section] = Field(default_factory=list)

    def content_hash(self) -> str:
        """Hash of what the writer reads from this node (resume rewrites a section when it changes)."""
        payload = {"title": self.title, "brief": self.brief, "words": self.words, "deps": self.depends_on}
        if self.contains:  # only when set, so the runs of outlines without it keep their hashes
            payload["contains"] = sorted(self.contains)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def subtree(self) -> Iterator[Section]:
        """This node and all below it, depth-first in document order (iterative: no recursion limit)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


class Outline(BaseModel):
    """A whole document plan."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    audience: str = defaults.AUDIENCE
    style: str = defaults.STYLE
    language: str = "en"
    words: int = Field(gt=0)
    sections: list[Section] = Field(min_length=1)

    def walk(self) -> Iterator[tuple[tuple[int, ...], Section]]:
        """Yield (number path, section) for every node, depth-first in document order."""
        stack = [((i,), s) for i, s in reversed(list(enumerate(self.sections, 1)))]
        while stack:
            number, node = stack.pop()
            yield number, node
            stack.extend(((*number, i), c) for i, c in reversed(list(enumerate(node.children, 1))))

    def leaves(self) -> list[Section]:
        """The sections that get written, in document order."""
        return [s for top in self.sections for s in top.subtree() if not s.children]

    def find(self, section_id: str) -> Section:
        """The section with this id (KeyError if none). Where ids were last seen is remembered and
        tried first, so the graph builder's look-up per dependency pair costs O(depth), not a
        walk of the whole outline; a hint is checked on every use, so it is never stale. (With
        duplicate ids, which validation refuses, a hint may name a later one of them.)"""
        hinted = self._at(_FIND_HINTS.get(section_id, ()))
        if hinted is not None and hinted.id == section_id:
            return hinted
        if len(_FIND_HINTS) >= _MAX_FIND_HINTS:
            _FIND_HINTS.clear()
        seen: dict[str, tuple[int, ...]] = {}
        for number, s in self.walk():  # the whole walk, noting every id: one miss serves them all
            seen.setdefault(s.id, number)  # the first in document order, as before
        _FIND_HINTS.update(seen)
        if section_id not in seen:
            raise KeyError(section_id)
        return self._at(seen[section_id])  # type: ignore[return-value]

    def _at(self, number: tuple[int, ...]) -> Section | None:
        """The section at this number path (1-based), or None if there is none."""
        node, nodes = None, self.sections
        for i in number:
            if not 1 <= i <= len(nodes):
                return None
            node = nodes[i - 1]
            nodes = node.children
        return node

    def leaf_ids_under(self, section_id: str) -> list[str]:
        """Ids of the leaves at or below ``section_id``."""
        return [s.id for s in self.find(section_id).subtree() if not s.children]

    def headings(self) -> Iterator[tuple[Section | None, str]]:
        """The document's heading lines in order, each with its section (None for the title):
        ``# title``, then ``## 1 chapter``, ``### 1.1 section`` and so on."""
        yield None, f"# {self.title}"
        for number, node in self.walk():
            yield node, f"{'#' * min(6, len(number) + 1)} {'.'.join(map(str, number))} {node.title}"

    def heading_words(self) -> dict[str, int]:
        """Words of the headings each leaf follows (its own, and those of the title and chapters
        opened just before it): the part of its budget the headings take, since a document's
        length counts its headings (as LongBench-Write counts the whole response)."""
        owed, pending = {}, 0
        for node, line in self.headings():
            pending += count_words(line.lstrip("#"))
            if node is not None and not node.children:
                owed[node.id], pending = pending, 0
        return owed


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
    """Return a copy whose budgets flow top-down from ``outline.words`` (see module doc). A
    budget too small to split names the section that has it."""
    copy = outline.model_copy(deep=True)
    todo = deque([("document", copy.sections, copy.words)])
    while todo:  # a work list, not recursion; first in, first out: problems reported top-down
        where, nodes, total = todo.popleft()
        try:
            shares = distribute(total, [n.words for n in nodes])
        except OutlineError as err:
            raise OutlineError(f"{where}, field 'words': {err}; raise its words or remove sections") from None
        for node, share in zip(nodes, shares):
            node.words = share
            if node.children:
                todo.append((f"section {_q(node.id)}", node.children, share))
    return copy


# ---------------------------------------------------------------- messages


def _clean(text: str) -> str:
    """``text`` on one line: control, separator and unpaired surrogate characters escaped."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _q(value: Any, limit: int = 60) -> str:
    """A user-supplied value quoted for a message: one line, at most ``limit`` characters."""
    if isinstance(value, int) and value.bit_length() > 64:  # repr() of a huge int is slow or refused
        return "'a very large number'"
    text = _clean(value) if isinstance(value, str) else _clean(repr(value))
    return "'" + (text if len(text) <= limit else text[: limit - 1] + "…") + "'"


def _kind(value: Any) -> str:
    """What a wrong value is, in the user's terms (YAML, not Python)."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return f"the decimal number {value!r}"
    if isinstance(value, str):
        return f"the text {_q(value, 30)}"
    return {list: "a list", dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")


# ---------------------------------------------------------------- validation


def _check_raw_size(raw: Any) -> None:
    """Bound plain data (from YAML or a Python caller) by the same nesting depth and value count
    as the YAML pre-scan, counting shared or cyclic parts every time they are reached, so a
    cycle or a 'billion laughs' of shared lists stops here instead of in the validator."""
    count, stack = 1, [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        children = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > MAX_YAML_DEPTH:
            raise OutlineError(f"the outline nests more than {MAX_YAML_DEPTH} levels deep")
        count += len(children) * (2 if isinstance(value, dict) else 1)  # keys count as values
        if count > MAX_YAML_NODES:
            raise OutlineError(f"the outline has more than {MAX_YAML_NODES:,} values "
                               "(repeated parts counted each time)")
        stack.extend((c, depth + 1) for c in children)


def _describe(loc: tuple[Any, ...], raw: Any) -> str:
    """Turn a pydantic error location into 'section 'intro', field 'words'' using the raw data."""
    where, node, number = "document", raw, ()
    for k, part in enumerate(loc):
        if part in ("sections", "children") and k + 1 < len(loc) and isinstance(loc[k + 1], int):
            node = node.get(part) if isinstance(node, dict) else None
        elif isinstance(part, int) and isinstance(node, list) and part < len(node):
            node, number = node[part], (*number, part + 1)
            where = _section_name(node, number)
        else:
            return f"{where}, field {_q(part)}"
    return where


def _section_name(node: Any, number: tuple[int, ...]) -> str:
    """'section 'intro'', or by position when the id is missing or not usable text (so a YAML
    'id: yes' is never reported as a section named 'True')."""
    sid = node.get("id") if isinstance(node, dict) else None
    if isinstance(sid, str) and sid or isinstance(sid, int) and not isinstance(sid, bool):
        return f"section {_q(sid)}"
    return f"section {'.'.join(map(str, number))} (no usable id)"


_FRIENDLY = {
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "list_type": "must be a list",
    "model_type": "must be a mapping of fields",
    "dict_type": "must be a mapping of fields",
}


def _one_line(err: ValidationError, raw: Any) -> str:
    """The first validation problem as 'where: what', plus how many others there are."""
    errors = err.errors()
    first = errors[0]
    msg = first["msg"]
    if first["type"] in _FRIENDLY:
        msg = f"{_FRIENDLY[first['type']]}, not {_kind(first['input'])}"
    elif first["type"] == "string_pattern_mismatch":
        msg = f"must be 1 to {MAX_ID_CHARS} characters without spaces"
    elif first["type"] == "extra_forbidden":
        msg = "unknown field (allowed: id, title, brief, words, depends_on, contains, children)"
        if len(first["loc"]) == 1:
            msg = "unknown field (allowed: title, topic, audience, style, language, words, sections)"
    extra = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{_describe(first['loc'], raw)}: {msg}{extra}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(where: str, field: str, value: str, limit: int, *, required=False, one_line=False) -> None:
    """Refuse text that is blank (when required), too long, multi-line (when it must be one
    line, like a heading) or not encodable (a lone surrogate cannot be written to a file)."""
    problem = None
    if required and not value.strip():
        problem = "must not be blank"
    elif len(value) > limit:
        problem = f"is {len(value):,} characters long; at most {limit:,}"
    elif one_line and value.splitlines() != [value]:  # any line break, NEL and U+2028 included
        problem = "must be one line"
    elif _SURROGATE.search(value):
        problem = "contains an invalid character (a lone surrogate)"
    if problem:
        raise OutlineError(f"{where}, field '{field}': {problem}")


def _check_words(where: str, words: int) -> None:
    if words > MAX_WORDS:
        raise OutlineError(f"{where}, field 'words': at most {MAX_WORDS:,}")


def _check_document(outline: Outline) -> None:
    """Bounds on the document's own fields."""
    _check_text("document", "title", outline.title, MAX_TITLE_CHARS, required=True, one_line=True)
    _check_text("document", "topic", outline.topic, MAX_TOPIC_CHARS, required=True)
    _check_text("document", "audience", outline.audience, MAX_BRIEF_CHARS)
    _check_text("document", "style", outline.style, MAX_BRIEF_CHARS)
    _check_text("document", "language", outline.language, MAX_LANGUAGE_CHARS, required=True, one_line=True)
    _check_words("document", outline.words)


def _check_section(node: Section, depth: int) -> None:
    """Bounds on one section's fields and on how deep its children go."""
    where = f"section {_q(node.id)}"
    _check_text(where, "title", node.title, MAX_TITLE_CHARS, required=True, one_line=True)
    _check_text(where, "brief", node.brief, MAX_BRIEF_CHARS)
    _check_words(where, node.words)
    if len(node.depends_on) > MAX_DEPENDS_ON:
        raise OutlineError(f"{where}, field 'depends_on': {len(node.depends_on)} entries; at most {MAX_DEPENDS_ON}")
    if node.children and depth >= MAX_DEPTH:
        raise OutlineError(f"{where}, field 'children': sections nested more than {MAX_DEPTH} levels deep "
                           "(headings stop at ######)")


def check_limits(outline: Outline) -> None:
    """Refuse an outline beyond the bounds at the top of this module. Iterative and stops at the
    first excess, so it is safe to run before anything walks the tree recursively."""
    _check_document(outline)
    count = leaves = dependencies = 0
    stack = [(s, 1) for s in reversed(outline.sections)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_SECTIONS:
            raise OutlineError(f"document, field 'sections': more than {MAX_SECTIONS:,} sections")
        _check_section(node, depth)
        leaves += not node.children
        dependencies += len(node.depends_on)
        stack.extend((c, depth + 1) for c in reversed(node.children))
    if leaves > MAX_LEAVES:
        raise OutlineError(f"document, field 'sections': {leaves:,} sections to write; at most {MAX_LEAVES:,}")
    if leaves * MIN_LEAF_WORDS > outline.words:  # the whole document is too short: say so up front
        raise OutlineError(f"document, field 'words': {outline.words} words cannot give {leaves} sections "
                           f"{MIN_LEAF_WORDS} words each; raise words or remove sections")
    if dependencies > MAX_DEPENDENCIES:
        raise OutlineError(f"document: {dependencies:,} depends_on entries in all; at most {MAX_DEPENDENCIES:,}")


def _index(outline: Outline) -> tuple[dict[str, Section], dict[str, str]]:
    """(id -> section, id -> parent id), refusing duplicate ids."""
    index: dict[str, Section] = {}
    parent: dict[str, str] = {}
    for _, s in outline.walk():
        if s.id in index:
            raise OutlineError(f"section {_q(s.id)}, field 'id': duplicate id")
        index[s.id] = s
        parent.update((c.id, s.id) for c in s.children)
    return index, parent


def _is_ancestor(older: str, younger: str, parent: dict[str, str]) -> bool:
    """Whether section ``older`` contains section ``younger`` (at any depth)."""
    node = parent.get(younger)
    while node is not None and node != older:
        node = parent.get(node)
    return node == older


def _check_dependency(section: str, dep: str, index: dict[str, Section], parent: dict[str, str]) -> None:
    """One depends_on entry must name another section outside this one's own branch: depending
    on itself, an ancestor or a descendant is not a cycle between sections but a mistake."""
    where = f"section {_q(section)}, field 'depends_on'"
    if dep not in index:
        raise OutlineError(f"{where}: unknown section {_q(dep)}")
    if dep == section:
        raise OutlineError(f"{where}: a section cannot depend on itself")
    if _is_ancestor(dep, section, parent):
        raise OutlineError(f"{where}: {_q(dep)} contains this section")
    if _is_ancestor(section, dep, parent):
        raise OutlineError(f"{where}: {_q(dep)} is part of this section")


def check_consistency(outline: Outline) -> None:
    """Refuse duplicate ids, bad or oversized dependencies, and dependency cycles."""
    index, parent = _index(outline)
    leaves = _leaves_under(outline)
    deps, pairs = nx.DiGraph(), 0
    for sid, s in index.items():
        for dep in s.depends_on:
            _check_dependency(sid, dep, index, parent)
            pairs += len(leaves[sid]) * len(leaves[dep])
            if pairs > MAX_DEPENDENCY_PAIRS:  # the writer's graph gets one edge per pair
                raise OutlineError(f"section {_q(sid)}, field 'depends_on': the dependencies link more than "
                                   f"{MAX_DEPENDENCY_PAIRS:,} pairs of sections; depend on fewer or smaller sections")
            deps.add_edges_from((src, target) for src in leaves[dep] for target in leaves[sid])
    try:
        cycle = nx.find_cycle(deps)
    except nx.NetworkXNoCycle:
        return
    ids = [cycle[0][0]] + [v for _, v in cycle]
    if len(ids) > 9:  # a cycle through a whole part of the book: show its ends
        ids = ids[:4] + [f"... ({len(ids) - 8} more)"] + ids[-4:]
    path = " -> ".join(_clean(i) for i in ids)
    raise OutlineError(f"section {_q(cycle[0][1])}, field 'depends_on': dependency cycle {path}")


def _leaves_under(outline: Outline) -> dict[str, list[str]]:
    """id -> ids of the leaves at or below it, for every section (one pass, children first)."""
    under: dict[str, list[str]] = {}
    for _, s in reversed(list(outline.walk())):
        under[s.id] = [leaf for c in s.children for leaf in under[c.id]] if s.children else [s.id]
    return under


def check_budgets(outline: Outline) -> None:
    """After :func:`rebalance`: every leaf gets at least MIN_LEAF_WORDS words."""
    for leaf in outline.leaves():
        if leaf.words < MIN_LEAF_WORDS:
            raise OutlineError(f"section {_q(leaf.id)}, field 'words': gets only {leaf.words} of the document's "
                               f"{outline.words} words (at least {MIN_LEAF_WORDS}); raise its words or remove sections")


def parse_outline(raw: Any) -> Outline:
    """Validate plain data (as read from YAML) into a consistent, rebalanced outline; every
    problem is a one-line :class:`OutlineError` naming the section and field."""
    if not isinstance(raw, dict):
        raise OutlineError("the outline must be a mapping with title, topic, words and sections")
    _check_raw_size(raw)
    try:
        outline = Outline.model_validate(raw)
    except ValidationError as err:
        raise OutlineError(_one_line(err, raw)) from None
    check_limits(outline)  # before anything below walks the tree
    check_consistency(outline)
    balanced = rebalance(outline)
    check_budgets(balanced)
    return balanced


# ---------------------------------------------------------------- YAML reading

_CORE = "tag:yaml.org,2002:"
_CORE_TAGS = {_CORE + t for t in ("null", "bool", "int", "float", "str", "seq", "map")}
# YAML 1.2 core schema: 'yes', 'on', 'No' are text, '0600' is decimal, '1:30' is text
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_RE = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z")
_MAX_INT_CHARS = 4_000  # under Python's int() limit: a longer number is a YAML error, not a ValueError

_YAMLBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same rules, faster


class _OutlineLoader(_YAMLBase):  # type: ignore[valid-type,misc]
    """A safe loader with YAML 1.2 core-schema scalars that refuses duplicate keys, non-text
    keys and tags outside the core schema. Its tables are its own: yaml.SafeLoader is untouched."""

    # SafeLoader's table minus its YAML 1.1 entries (bool, int, float, timestamp, merge, value, ...)
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag == _CORE + "null"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node.tag not in _CORE_TAGS:  # !!binary, !!timestamp, !!set, !!python/..., local tags
            tag = _q(node.tag.replace(_CORE, "!!"))
            problem = f"tag {tag} is not allowed in an outline"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
        return super().construct_object(node, deep)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, _ in node.value:
                key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                if not isinstance(key, str):
                    raise OutlineError(f"line {line}: a key must be text, not {_kind(key)}")
                if key in seen:
                    raise OutlineError(f"line {line}: duplicate key {_q(key)}{_in_section(node)}")
                seen.add(key)
        return super().construct_mapping(node, deep)


def _in_section(node: yaml.MappingNode) -> str:
    """' in section 'x'' when this mapping has a plain-text id, for duplicate-key messages."""
    ids = [v.value for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "id"
           and isinstance(v, yaml.ScalarNode)]
    return f" in section {_q(ids[0])}" if ids else ""


def _scalar(loader: Any, node: yaml.Node, pattern: re.Pattern[str], what: str) -> str:
    """The node's text, checked against ``pattern`` also when the tag was written explicitly
    ('!!int 1_000', '!!bool yes'), so a bad value is a YAML error and not a Python one."""
    text = loader.construct_scalar(node)  # a collection under a scalar tag is a ConstructorError
    if not pattern.match(text) or len(text) > _MAX_INT_CHARS:
        raise yaml.constructor.ConstructorError(None, None, f"{_q(text, 30)} is not {what}", node.start_mark)
    return text


def _construct_bool(loader: Any, node: yaml.Node) -> bool:
    return _scalar(loader, node, _BOOL_RE, "true or false") in ("true", "True", "TRUE")


def _construct_int(loader: Any, node: yaml.Node) -> int:
    text = _scalar(loader, node, _INT_RE, "a usable integer")
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


def _construct_float(loader: Any, node: yaml.Node) -> float:
    text = _scalar(loader, node, _FLOAT_RE, "a decimal number")
    special = {".inf": float("inf"), ".nan": float("nan")}.get(text.lstrip("+-").lower())
    if special is not None:
        return -special if text.startswith("-") else special
    return float(text)


_OutlineLoader.add_implicit_resolver(_CORE + "bool", _BOOL_RE, list("tTfF"))
_OutlineLoader.add_implicit_resolver(_CORE + "int", _INT_RE, list("-+0123456789"))
_OutlineLoader.add_implicit_resolver(_CORE + "float", _FLOAT_RE, list("-+.0123456789"))
_OutlineLoader.add_constructor(_CORE + "bool", _construct_bool)
_OutlineLoader.add_constructor(_CORE + "int", _construct_int)
_OutlineLoader.add_constructor(_CORE + "float", _construct_float)


def _read_text(path: Path) -> str:
    """The file's text, refusing anything but a regular UTF-8 file of at most MAX_OUTLINE_BYTES."""
    try:
        data = read_regular(path, MAX_OUTLINE_BYTES)
    except FileNotFoundError:
        raise OutlineError("no such file") from None
    except ValueError:  # a NUL character in the path
        raise OutlineError("cannot read (invalid path)") from None
    except TooLarge:
        raise OutlineError(f"larger than {MAX_OUTLINE_BYTES // 1024 // 1024} MiB; an outline is far smaller") from None
    except OSError as err:
        why = err.strerror if isinstance(err, NotRegularFile) else f"cannot read ({_clean(err.strerror or str(err))})"
        raise OutlineError(why) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise OutlineError(f"not UTF-8 text (byte {err.start})") from None


def _prescan(text: str) -> None:
    """Bound nesting depth and expanded size from the event stream, before any node is built.
    The parser is iterative (a state stack, no recursion), so a 10,000-deep '[[[...' is just
    events; the composer and the validator that follow do recurse, and aliases make them visit
    an anchor's subtree once per use, so an alias counts the size of what it names."""
    budget = _EventBudget()
    for event in yaml.parse(text, Loader=_OutlineLoader):
        budget.add(event)


class _EventBudget:
    """Running depth and expanded value count of one pre-scan."""

    def __init__(self) -> None:
        self.depth = self.count = 0
        self.sizes: dict[str, int | None] = {}  # anchor -> expanded size of its node (None while open)
        self.starts: list[tuple[str | None, int]] = []  # open collections: (anchor, count at start)

    def add(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            self.count += self._alias_size(event.anchor, line)
        elif isinstance(event, yaml.ScalarEvent):
            self.count += 1
            if event.anchor:
                self.sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            self._open(event.anchor, line)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start = self.starts.pop()
            self.depth -= 1
            if anchor:
                self.sizes[anchor] = self.count - start + 1
        if self.count > MAX_YAML_NODES:
            raise OutlineError(f"line {line}: more than {MAX_YAML_NODES:,} values once aliases are expanded")

    def _open(self, anchor: str | None, line: int) -> None:
        self.count, self.depth = self.count + 1, self.depth + 1
        if self.depth > MAX_YAML_DEPTH:
            raise OutlineError(f"line {line}: nested more than {MAX_YAML_DEPTH} levels deep")
        self.starts.append((anchor, self.count))
        if anchor:
            self.sizes[anchor] = None

    def _alias_size(self, anchor: str, line: int) -> int:
        """How many values an alias stands for (0 when undefined: the composer reports that)."""
        if anchor in self.sizes and self.sizes[anchor] is None:
            raise OutlineError(f"line {line}: alias {_q('*' + anchor)} is used inside the node it names")
        return self.sizes.get(anchor) or 0


def _load_yaml(text: str) -> Any:
    """Plain data from YAML text, bounded by :func:`_prescan`; syntax errors become one line."""
    try:
        _prescan(text)
        return yaml.load(text, Loader=_OutlineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise OutlineError(_yaml_problem(err, text)) from None
    except RecursionError:  # not expected after the pre-scan; a last guard
        raise OutlineError("malformed YAML: nested too deeply") from None


def _yaml_problem(err: yaml.YAMLError, text: str) -> str:
    """'malformed YAML at line N: what' from any PyYAML error, on one line."""
    if isinstance(err, yaml.reader.ReaderError):
        return _reader_problem(err, text)
    mark = getattr(err, "problem_mark", None)
    line = mark.line + 1 if mark else None
    problem = getattr(err, "problem", None) or "syntax error"
    if "maximum nesting depth" in problem:  # libyaml's own limit (PyYAML 6.0.4+), met ahead of ours
        return f"line {line or 1}: nested more than {MAX_YAML_DEPTH} levels deep"
    context = getattr(err, "context", None)
    what = f"{context}: {problem}" if context else problem
    return f"malformed YAML{f' at line {line}' if line else ''}: {_clean(str(what))}"


def _reader_problem(err: yaml.reader.ReaderError, text: str) -> str:
    """A character YAML does not allow (a control character): it has an offset, not a mark;
    libyaml counts it in UTF-8 bytes and reports a code, PyYAML in characters with the character."""
    code = err.character if isinstance(err.character, int) else ord(err.character)
    before = text.encode()[: err.position] if _YAMLBase is not yaml.SafeLoader else text[: err.position]
    line = before.count(b"\n" if isinstance(before, bytes) else "\n") + 1
    return f"malformed YAML at line {line}: character #x{code:04x} is not allowed"


def read_yaml(path: str | Path) -> Any:
    """Plain data from a small YAML file (thresholds, later templates) with the outline's
    guards: a regular UTF-8 file of bounded size, bounded nesting and aliases, YAML 1.2
    scalars, no duplicate keys. Problems are one-line :class:`OutlineError` s."""
    return _load_yaml(_read_text(Path(path)))


def load_outline(path: str | Path) -> Outline:
    """Read and validate an outline YAML file; every problem is a one-line :class:`OutlineError`
    starting with the file's name."""
    path = Path(path)
    try:
        return parse_outline(_load_yaml(_read_text(path)))
    except OutlineError as err:
        raise OutlineError(f"{_clean(str(path))}: {err}") from None


# ---------------------------------------------------------------- YAML writing


class _OutlineDumper(yaml.SafeDumper):
    """SafeDumper that also quotes text a YAML 1.2 reader would take for a number ('1e5', '0o17');
    its own YAML 1.1 rules already quote 'No', 'on', '0600' and '1:30'."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """Text with a NEL or Unicode line separator is written double-quoted, where they are
    escaped: in other styles PyYAML writes them raw and a reader folds them into spaces."""
    style = '"' if any(c in data for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar(_CORE + "str", data, style=style)


_OutlineDumper.add_representer(str, _represent_str)
_OutlineDumper.add_implicit_resolver(_CORE + "int", _INT_RE, list("-+0123456789"))
_OutlineDumper.add_implicit_resolver(_CORE + "float", _FLOAT_RE, list("-+.0123456789"))


def _section_data(s: Section) -> dict[str, Any]:
    data: dict[str, Any] = {"id": s.id, "title": s.title, "brief": s.brief, "words": s.words}
    if s.depends_on:
        data["depends_on"] = list(s.depends_on)
    if s.contains:
        data["contains"] = list(s.contains)
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
    body = yaml.dump(data, Dumper=_OutlineDumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def normal_topic(topic: str) -> str:
    """A topic as compared between runs: NFC Unicode, runs of whitespace as one space."""
    return " ".join(unicodedata.normalize("NFC", topic).split())


def same_topic(a: str, b: str) -> bool:
    """True when two topics name the same job (they differ at most in spacing or Unicode form)."""
    return normal_topic(a) == normal_topic(b)


def slugify(text: str, fallback: str) -> str:
    """A file-name-safe slug (ASCII letters, digits, dashes), or ``fallback`` when none is left.
    Used for every file name made from an id, so an id like '../../etc/x' cannot escape."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-")
    return slug or fallback
