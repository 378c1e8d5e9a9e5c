"""Markdown blocks a section may hold that are not prose: fenced code (mermaid diagrams
included), display math, tables and lists. Sentence splitting, cutting to length, the wrapper cleaner
and citation handling all work on prose; these blocks pass through them whole and unchanged
(a ``# comment`` in Python is not a heading, ``x = [1]`` is not a citation, a table row has no
full stop and is not an unfinished sentence).

The blocks are found by markdown-it-py (the CommonMark parser rich already brings) with the
dollarmath plugin from mdit-py-plugins, so what counts as a fence or a table is what every
Markdown renderer, and the HTML and DOCX exports, will draw."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_KINDS = {"fence", "math_block", "math_block_label", "table_open", "bullet_list_open", "ordered_list_open"}
_MAYBE = re.compile(r"^ {0,3}(```|~~~|\$\$|\||[-*+] |\d{1,9}[.)] )", re.M)  # a cheap test before parsing
_FENCE = re.compile(r"`{3,}|~{3,}")  # a code fence's opening run


@functools.cache
def _parser():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    return MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)


def split(text: str) -> list[tuple[bool, str]]:
    """``text`` as consecutive (is_block, piece) parts that join back to it exactly. A block
    part is whole lines (with its line break); a fence the text ends inside (a draft the token
    limit cut off) is a block that :func:`closed` reports as unfinished."""
    if not _MAYBE.search(text):
        return [(False, text)] if text else []
    lines = text.splitlines(keepends=True)
    spans = _block_lines(text, len(lines))
    parts: list[tuple[bool, str]] = []
    at = 0
    for start, end in spans:
        if start > at:
            parts.append((False, "".join(lines[at:start])))
        parts.append((True, "".join(lines[start:end])))
        at = end
    if at < len(lines):
        parts.append((False, "".join(lines[at:])))
    return parts


def _block_lines(text: str, n_lines: int) -> list[tuple[int, int]]:
    """Line ranges [start, end) of the top-level fences, math blocks and tables."""
    spans = []
    for token in _parser().parse(text):
        if token.type in _KINDS and token.level == 0 and token.map:
            start, end = token.map
            spans.append((start, min(end, n_lines)))
    return spans


def closed(block: str) -> bool:
    """Whether a block part is complete: a fence or ``$$`` block has its closing line."""
    lines = [line.strip() for line in block.strip("\n").splitlines()]
    first = lines[0] if lines else ""
    fence = _FENCE.match(first)
    if fence:  # closed by a line of at least as many of the same character, and nothing else
        last = lines[-1]
        return len(lines) > 1 and last.startswith(fence.group(0)) and set(last) == {last[0]}
    if first.startswith("$$"):
        return len(lines) > 1 and lines[-1].endswith("$$") or len(first) > 4 and first.endswith("$$")
    return True  # a table or a list: every row or item it has is complete


def open_tail(text: str) -> tuple[str, str] | None:
    """(text before it, the block) when ``text`` ends inside a fence or ``$$`` block that is
    never closed, else None."""
    parts = split(text)
    if not parts or not parts[-1][0] or closed(parts[-1][1]):
        return None
    return "".join(piece for _, piece in parts[:-1]), parts[-1][1]


def sealed(text: str) -> str:
    """``text`` with a fence or ``$$`` block it ends inside closed, so what follows it in a
    document (the next heading) is not swallowed into code by every renderer."""
    tail = open_tail(text)
    if tail is None:
        return text
    opener = tail[1].lstrip().split("\n", 1)[0]
    fence = "$$" if opener.startswith("$$") else _FENCE.match(opener).group(0)
    return text.rstrip("\n") + "\n" + fence


def prose_map(text: str, fn: Callable[[str], str]) -> str:
    """``text`` with ``fn`` applied to each prose part; blocks are kept exactly."""
    return "".join(piece if is_block else fn(piece) for is_block, piece in split(text))


def block_in(unit: str) -> str | None:
    """The block a unit of ``length.split_sentences`` is (a code, math, table or list block),
    or None when the unit is prose."""
    parts = split(unit.strip("\n") + "\n")
    return parts[0][1] if len(parts) == 1 and parts[0][0] else None
