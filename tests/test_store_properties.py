"""Property: any sequence of edits to an outline between runs (insert, delete, reorder, rename,
re-budget) rewrites exactly the changed sections and their dependants, keeps every other
section file byte-identical, and leaves no stale file."""

from __future__ import annotations

import itertools
import re
import tempfile
from pathlib import Path

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longwriter.backends.fake import ScriptedBackend
from longwriter.graph import build_graph
from longwriter.outline import Outline, parse_outline
from longwriter.pipeline import expand
from longwriter.store import section_name
from longwriter.writer import WriterSettings

from .conftest import make_outline, smart_responder

NO_CHECK = WriterSettings(check=False)
_names = itertools.count(100)

edits = st.lists(st.tuples(st.sampled_from(["insert", "delete", "reorder", "rename", "rebudget"]),
                           st.integers(0, 1000), st.integers(0, 1000)), min_size=1, max_size=4)


def apply(data: dict, edit: tuple[str, int, int]) -> None:
    """One user edit of the outline data, at positions picked by the two integers."""
    kind, a, b = edit
    chapter = data["sections"][a % len(data["sections"])]
    kids = chapter["children"]
    if kind == "insert":
        n = next(_names)
        kids.insert(b % (len(kids) + 1), {"id": f"new{n}", "title": f"Coffee novelty {n}", "brief": "b",
                                          "words": 100, "children": [], "depends_on": []})
    elif kind == "delete" and len(kids) > 2:
        kids.pop(b % len(kids))
    elif kind == "reorder":
        kids.insert(b % len(kids), kids.pop(a % len(kids)))
    elif kind == "rename":
        kids[b % len(kids)]["title"] += f" revised {next(_names)}"
    elif kind == "rebudget":
        kids[b % len(kids)]["words"] = 100 + b % 400  # weights within 1:5, so no leaf falls under 10 words


def drafted_ids(backend: ScriptedBackend, outline: Outline) -> set[str]:
    by_title = {leaf.title: leaf.id for leaf in outline.leaves()}
    found = (re.search(r'Now write section [\d.]+ "([^"]+)"', r.messages[-1].content) for r in backend.requests)
    return {by_title[m.group(1)] for m in found if m}


def expected_rewrites(before: Outline, after: Outline, policy: str) -> set[str]:
    old = {leaf.id: leaf.content_hash() for leaf in before.leaves()}
    changed = {leaf.id for leaf in after.leaves() if old.get(leaf.id) != leaf.content_hash()}
    graph = build_graph(after, policy)
    return changed.union(*(nx.descendants(graph, c) for c in changed)) if changed else set()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(edits, min_size=1, max_size=3), policy=st.sampled_from(["chapter", "independent", "serial"]))
def test_edits_rewrite_exactly_the_changed_sections(rounds, policy):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        current = make_outline(2, 3, 2400)
        backend = ScriptedBackend(smart_responder)
        expand(current, out, backend=backend, settings=NO_CHECK, policy=policy)
        for round_edits in rounds:
            data = current.model_dump()
            for edit in round_edits:
                apply(data, edit)
            edited = parse_outline(data)
            files_before = {p.name: p.read_bytes() for p in (out / "sections").iterdir()}
            backend.batches.clear()
            expand(edited, out, backend=backend, settings=NO_CHECK, policy=policy)
            rewritten = drafted_ids(backend, edited)
            assert rewritten == expected_rewrites(current, edited, policy)
            files = {p.name: p.read_bytes() for p in (out / "sections").iterdir()}
            assert set(files) == {Path(section_name(leaf.id)).name for leaf in edited.leaves()}
            for leaf in edited.leaves():
                name = Path(section_name(leaf.id)).name
                if leaf.id not in rewritten:
                    assert files[name] == files_before[name]
            current = edited
