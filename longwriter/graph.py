"""The dependency graph over the outline's leaves. The context policy only decides the
"previous section" edges; explicit ``depends_on`` edges are always kept.

- ``serial``: one chain through the whole document (AgentWrite's order).
- ``chapter``: a chain inside each top-level chapter; chapters proceed in parallel.
- ``independent``: no chain; every section sees only the outline (STORM-like).
"""

from __future__ import annotations

from typing import Literal

import networkx as nx

from .errors import OutlineError
from .outline import Outline

Policy = Literal["serial", "chapter", "independent"]
POLICIES: tuple[str, ...] = ("serial", "chapter", "independent")


def _chains(outline: Outline, policy: Policy) -> list[list[str]]:
    """The ordered runs of leaf ids that the policy links with 'prev' edges."""
    if policy == "serial":
        return [[leaf.id for leaf in outline.leaves()]]
    if policy == "chapter":
        return [outline.leaf_ids_under(top.id) for top in outline.sections]
    return []


def build_graph(outline: Outline, policy: Policy = "chapter") -> nx.DiGraph:
    """A DAG whose nodes are leaf ids (attribute ``order``: position in the document) and whose
    edges run from a dependency to its dependant (attribute ``kind``: 'prev' or 'explicit')."""
    if policy not in POLICIES:
        raise ValueError(f"unknown context policy {policy!r}")
    g = nx.DiGraph()
    for order, leaf in enumerate(outline.leaves()):
        g.add_node(leaf.id, order=order)
    for chain in _chains(outline, policy):
        g.add_edges_from(zip(chain, chain[1:]), kind="prev")
    for _, node in outline.walk():
        for dep in node.depends_on:
            for target in outline.leaf_ids_under(node.id):
                for src in outline.leaf_ids_under(dep):
                    if not g.has_edge(src, target):
                        g.add_edge(src, target, kind="explicit")
    if not nx.is_directed_acyclic_graph(g):
        cycle = " -> ".join(u for u, _ in nx.find_cycle(g))
        raise OutlineError(
            f"depends_on runs against the '{policy}' order ({cycle}); "
            "depend on earlier sections or use --context independent"
        )
    return g


def previous_in_chain(graph: nx.DiGraph, node: str) -> str | None:
    """The section whose tail this one continues from (its 'prev' predecessor), if any."""
    for src in graph.predecessors(node):
        if graph.edges[src, node]["kind"] == "prev":
            return src
    return None


def ready(graph: nx.DiGraph, done: set[str], started: set[str]) -> list[str]:
    """Sections not yet started whose dependencies are all done, in document order."""
    nodes = [n for n in graph if n not in started and all(p in done for p in graph.predecessors(n))]
    return sorted(nodes, key=lambda n: graph.nodes[n]["order"])
