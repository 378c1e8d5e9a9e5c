import pytest
import yaml

from longwriter.errors import OutlineError
from longwriter.outline import MAX_TITLE_CHARS, dump_outline, load_outline, parse_outline, rebalance, slugify

from .conftest import make_outline


def base():
    return {"title": "T", "topic": "coffee", "words": 1000,
            "sections": [{"id": "a", "title": "A", "words": 1}, {"id": "b", "title": "B", "words": 1}]}


def test_yaml_round_trip(tmp_path):
    outline = make_outline(3, 2, 1200)
    path = tmp_path / "o.yaml"
    path.write_text(dump_outline(outline), encoding="utf-8")
    assert load_outline(path) == outline


def test_leaf_budgets_sum_to_target_and_children_rescale():
    outline = make_outline(3, 3, 1000)
    assert sum(s.words for s in outline.leaves()) == 1000
    data = outline.model_dump()
    data["sections"][0]["words"] = 600  # user gives chapter 1 more: its children grow with it
    edited = parse_outline(data)
    assert sum(s.words for s in edited.sections[0].children) == edited.sections[0].words
    assert sum(s.words for s in edited.leaves()) == 1000
    assert edited.sections[0].words > outline.sections[0].words


def test_rebalance_is_idempotent():
    outline = make_outline(2, 3, 777)
    assert rebalance(outline) == outline


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["sections"][0].update(colour="red"), "section 'a', field 'colour': unknown field"),
    (lambda d: d.update(extra=1), "document, field 'extra': unknown field"),
    (lambda d: d["sections"][1].update(id="a"), "section 'a', field 'id': duplicate id"),
    (lambda d: d["sections"][0].update(depends_on=["zzz"]), "section 'a', field 'depends_on': unknown section 'zzz'"),
    (lambda d: (d["sections"][0].update(depends_on=["b"]), d["sections"][1].update(depends_on=["a"])),
     "field 'depends_on': dependency cycle"),
    (lambda d: d["sections"][1].update(words=0), "section 'b', field 'words': Input should be greater than 0"),
    (lambda d: d["sections"][1].update(words=-5), "section 'b', field 'words'"),
    (lambda d: d.update(words=0), "document, field 'words'"),
    (lambda d: d["sections"][0].pop("title"), "section 'a', field 'title': Field required"),
])
def test_bad_outlines_get_one_line_errors(mutate, message):
    data = base()
    mutate(data)
    with pytest.raises(OutlineError) as err:
        parse_outline(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_and_non_utf8_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: [unclosed\n", encoding="utf-8")
    with pytest.raises(OutlineError, match="malformed YAML at line"):
        load_outline(bad)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(OutlineError, match="not UTF-8"):
        load_outline(latin)
    with pytest.raises(OutlineError, match="no such file"):
        load_outline(tmp_path / "missing.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(OutlineError, match="malformed YAML"):
        load_outline(evil)


def test_slugify_blocks_path_traversal():
    assert slugify("../../etc/x", "s") == "etc-x"
    assert slugify("咖啡", "s3") == "s3"
    assert "/" not in slugify("a/b\\c", "s")


TRICKY = ["No", "on", "0600", "1e5", "0o17", "0x1F", "1:30", "[brackets]: and colons", 'say "hi"', "it's",
          "# not a comment", "a # b", "咖啡的历史", "- dash", "? query", "{brace}", "null", "~", "TRUE", ".inf",
          ".nan", "=", "<<", "2024-01-01", "@at", "`tick`", "%pct", "*star", "&amp", "!bang", "|pipe", ">gt",
          " leading", "trailing ", "tab\there", "€ and ☕", "x" * MAX_TITLE_CHARS]


def test_dump_round_trips_tricky_text_through_load(tmp_path):
    """Titles a YAML 1.1 or 1.2 reader would take for booleans, numbers, dates, comments or
    flow syntax come back as the same text."""
    sections = [{"id": f"s{i}", "title": t, "brief": f"{t}\nsecond line: {t}", "words": 1}
                for i, t in enumerate(TRICKY)]
    sections[0]["brief"] = "a NEL\x85inside"  # PyYAML writes it raw unless told to quote, then reads a space
    sections[1]["brief"] = "ends with NEL\x85"
    sections[2]["brief"] = "all of them: NEL\x85, LS\u2028, PS\u2029, CR\r, tab\t."
    sections.append({"id": "on", "title": "id on", "words": 1, "depends_on": ["s0", "s2"], "children": [
        {"id": "0600", "title": "咖啡", "words": 1}, {"id": "No", "title": "No", "words": 1, "depends_on": ["s1"]}]})
    outline = parse_outline({"title": "No: [咖啡] # 1", "topic": "咖啡的历史 'quoted'", "audience": "yes",
                             "style": "0600", "language": "zh", "words": 5000, "sections": sections})
    path = tmp_path / "o.yaml"
    path.write_text(dump_outline(outline), encoding="utf-8")
    loaded = load_outline(path)
    assert loaded == outline
    assert [s.title for s in loaded.leaves()][: len(TRICKY)] == TRICKY
    assert [s.id for _, s in loaded.walk()][-3:] == ["on", "0600", "No"]


def test_dump_keeps_unicode_and_is_plain_yaml():
    outline = parse_outline({"title": "咖啡", "topic": "咖啡的历史", "words": 100,
                             "sections": [{"id": "s1", "title": "起源", "words": 1}]})
    text = dump_outline(outline)
    assert "咖啡的历史" in text
    assert yaml.safe_load(text)["sections"][0]["title"] == "起源"


def test_find_remembers_positions_but_never_returns_a_stale_section():
    outline = make_outline(3, 3, 900)
    assert outline.find("c2s3").title == "Coffee part 2.3"
    outline.sections.reverse()  # the remembered position now holds another section
    assert outline.find("c2s3").title == "Coffee part 2.3"
    assert outline.leaf_ids_under("c3") == ["c3s1", "c3s2", "c3s3"]
    outline.sections[1].children.pop()  # c2s3 removed
    with pytest.raises(KeyError):
        outline.find("c2s3")
    assert make_outline(3, 3, 900).find("c1s1").id == "c1s1"  # same ids in another outline


def test_lookups_on_a_large_outline_are_fast():
    """The graph builder looks up a section per dependency pair: that must not walk the tree."""
    import time

    outline = parse_outline({"title": "T", "topic": "coffee", "words": 100_000, "sections": [
        {"id": f"c{i}", "title": "C", "words": 1, "children": [{"id": f"c{i}s{j}", "title": "S", "words": 1}
                                                               for j in range(5)]} for i in range(200)]})
    started = time.perf_counter()
    for _ in range(20):
        for leaf in outline.leaves():
            assert outline.leaf_ids_under(leaf.id) == [leaf.id]
    assert time.perf_counter() - started < 2  # 20,000 look-ups; walking the tree each time takes ~10 s
