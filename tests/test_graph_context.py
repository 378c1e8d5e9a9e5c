import pytest

from longwriter.context import ContextBuilder
from longwriter.errors import OutlineError
from longwriter.graph import build_graph, ready
from longwriter.outline import parse_outline
from longwriter.pipeline import expand
from longwriter.writer import WriterSettings

from .conftest import make_outline


def prev_edges(g):
    return sorted((u, v) for u, v, k in g.edges(data="kind") if k == "prev")


def test_serial_is_one_chain():
    g = build_graph(make_outline(2, 2), "serial")
    assert prev_edges(g) == [("c1s1", "c1s2"), ("c1s2", "c2s1"), ("c2s1", "c2s2")]


def test_chapter_chains_inside_chapters_only():
    g = build_graph(make_outline(3, 2), "chapter")
    assert prev_edges(g) == [("c1s1", "c1s2"), ("c2s1", "c2s2"), ("c3s1", "c3s2")]
    assert ready(g, set(), set()) == ["c1s1", "c2s1", "c3s1"]


def test_independent_has_no_chain_but_keeps_explicit_dependencies():
    data = make_outline(2, 2).model_dump()
    data["sections"][1]["children"][1]["depends_on"] = ["c1"]
    g = build_graph(parse_outline(data), "independent")
    assert prev_edges(g) == []
    assert sorted(g.predecessors("c2s2")) == ["c1s1", "c1s2"]
    assert ready(g, set(), set()) == ["c1s1", "c1s2", "c2s1"]


def test_dependency_against_serial_order_is_refused():
    data = make_outline(2, 2).model_dump()
    data["sections"][0]["children"][0]["depends_on"] = ["c2s2"]
    outline = parse_outline(data)
    build_graph(outline, "independent")  # fine without a chain
    with pytest.raises(OutlineError, match="runs against the 'serial' order"):
        build_graph(outline, "serial")


@pytest.mark.parametrize("policy", ["serial", "chapter", "independent"])
def test_context_stays_bounded_as_document_grows(policy, fake):
    """Prompt tokens per section do not grow with the number of sections (windowed context)."""
    means = []
    for chapters in (5, 20):
        outline = make_outline(chapters, 2, words=200 * chapters * 2)
        g = build_graph(outline, policy)
        ctx = ContextBuilder(outline, g, fake.count_tokens)
        long_text = " ".join(f"Sentence {i} about coffee." for i in range(2000))
        texts = {leaf.id: long_text for leaf in outline.leaves()}
        sizes = [fake.count_tokens(" ".join([ctx.build(leaf.id, texts, texts).summary,
                                             ctx.build(leaf.id, texts, texts).tail] + ctx.build(leaf.id, texts, texts).outline))
                 for leaf in outline.leaves()]
        assert max(sizes) <= 160 + 160 + 200
        means.append(sum(sizes) / len(sizes))
    assert means[1] <= means[0] * 1.15


@pytest.mark.parametrize("policy", ["serial", "chapter", "independent"])
def test_every_policy_writes_a_whole_document(policy, fake, tmp_path):
    outline = make_outline(3, 2, 600)
    result = expand(outline, tmp_path / policy, backend=fake, policy=policy,
                    settings=WriterSettings(check=False))
    assert len(result.report.sections) == 6
    for leaf in outline.leaves():
        assert leaf.title in result.document
    prompts = [r.messages[-1].content for r in fake.requests]
    limit = max(fake.count_tokens(p) for p in prompts)
    assert limit < 700  # every section prompt stays under the budget
