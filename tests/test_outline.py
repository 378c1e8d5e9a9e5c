import pytest
import yaml

from longwriter.errors import OutlineError
from longwriter.outline import dump_outline, load_outline, parse_outline, rebalance, slugify

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


def test_dump_keeps_unicode_and_is_plain_yaml():
    outline = parse_outline({"title": "咖啡", "topic": "咖啡的历史", "words": 100,
                             "sections": [{"id": "s1", "title": "起源", "words": 1}]})
    text = dump_outline(outline)
    assert "咖啡的历史" in text
    assert yaml.safe_load(text)["sections"][0]["title"] == "起源"
