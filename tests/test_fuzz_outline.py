"""Fuzz the outline loader: any input either loads into a valid outline or raises the
project's own OutlineError on one line (never another exception, never a hang): random bytes,
random documents, edits of a valid outline, duplicated keys, anchors and aliases (up to
'billion laughs' and self-reference), and deep nesting."""

import copy
import re
import time

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from longwriter.errors import OutlineError
from longwriter.outline import MAX_YAML_NODES, dump_outline, load_outline, parse_outline

from .conftest import make_outline

VALID = make_outline(2, 2, 800).model_dump()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10_000), st.floats(allow_nan=True),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=12)
FIELDS = ["id", "title", "brief", "words", "depends_on", "children", "topic", "sections", "bogus"]


def check_loads_or_refuses(tmp_path, text: str | bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        outline = load_outline(path)
    except OutlineError as err:
        assert "\n" not in str(err)
        return
    assert sum(s.words for s in outline.leaves()) == outline.words
    assert load_outline(path) == outline


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_random_bytes(tmp_path, data):
    check_loads_or_refuses(tmp_path, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values)
def test_random_yaml_documents(tmp_path, doc):
    check_loads_or_refuses(tmp_path, yaml.safe_dump(doc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([(), (0,), (1,), (0, 0), (0, 1), (1, 0)]),
                          st.sampled_from(FIELDS), values), min_size=1, max_size=4))
def test_mutations_of_a_valid_outline(tmp_path, edits):
    doc = copy.deepcopy(VALID)
    for path, field, value in edits:
        node = doc
        try:
            for k, idx in enumerate(path):
                node = node["sections"][idx] if k == 0 else node["children"][idx]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(node, dict):
            node[field] = value
    check_loads_or_refuses(tmp_path, yaml.safe_dump(doc, allow_unicode=True))


def test_valid_outline_survives(tmp_path):
    check_loads_or_refuses(tmp_path, dump_outline(make_outline(2, 2, 800)))


# ---------------------------------------------------------------- hostile YAML

GOOD_TEXT = dump_outline(make_outline(2, 2, 800))
_KEY_LINE = re.compile(r"^(\s*)(- )?([a-z_]+):")
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def refuses_quickly(tmp_path, text: str, fragment: str | None = None) -> str | None:
    """Load ``text``: a valid outline or a one-line OutlineError, within a few seconds."""
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    started = time.perf_counter()
    try:
        load_outline(path)
        message = None
    except OutlineError as err:
        message = str(err)
        assert "\n" not in message
    assert time.perf_counter() - started < 5
    if fragment is not None:
        assert message is not None and fragment in message, message
    return message


@FUZZ
@given(st.data())
def test_duplicated_keys_are_always_refused(tmp_path, data):
    lines = GOOD_TEXT.splitlines()
    keyed = [i for i, line in enumerate(lines) if _KEY_LINE.match(line)]
    i = data.draw(st.sampled_from(keyed))
    indent, dash, key = _KEY_LINE.match(lines[i]).groups()
    value = data.draw(st.sampled_from(["x", "1", "[]", "{}", "''", "No", "0600"]))
    twin = f"{indent}{'  ' if dash else ''}{key}: {value}"
    at = i + 1 if dash else i  # after '- id: a' (same mapping), else before (a block value may follow)
    text = "\n".join(lines[:at] + [twin] + lines[at:]) + "\n"
    assert f"duplicate key '{key}'" in refuses_quickly(tmp_path, text)


def _shared(levels: int, fan: int, base, as_dict: bool):
    """A value whose every level holds ``fan`` references to the level below: dumped, they
    become anchors and aliases (a 'billion laughs' when levels and fan are large)."""
    value = base
    for _ in range(levels):
        value = {f"k{j}": value for j in range(fan)} if as_dict else [value] * fan
    return value


@FUZZ
@given(st.integers(1, 12), st.integers(1, 12), st.booleans(), st.booleans(),
       st.sampled_from(["sections", "children", "brief", "depends_on", "title", "extra", "words"]),
       st.sampled_from([{"id": "x", "title": "X", "words": 1}, "lol", 7, ["a"]]))
def test_anchors_and_aliases_load_or_are_refused_quickly(tmp_path, levels, fan, as_dict, recursive, field, base):
    doc = copy.deepcopy(VALID)
    value = _shared(levels, fan, copy.deepcopy(base), as_dict)
    if recursive:  # a structure that contains itself: YAML writes '&id [*id]'
        value = [value]
        value.append(value)
    if field in ("children", "brief", "title", "depends_on"):
        doc["sections"][0][field] = value
    else:
        doc[field] = value
    text = yaml.dump(doc, Dumper=yaml.SafeDumper, allow_unicode=True)
    if fan > 1 and (levels > 1 or isinstance(base, (dict, list))):  # shared containers (not strings) get anchors
        assert "&" in text and "*" in text
    message = refuses_quickly(tmp_path, text)
    if recursive:
        assert message is not None and ("inside the node it names" in message or "aliases are expanded" in message)
    if fan ** levels > MAX_YAML_NODES:
        assert message is not None and "values once aliases are expanded" in message


@FUZZ
@given(st.integers(1, 30_000), st.sampled_from(["[", "{a: ", "- ", "{? ", "[{a: "]), st.booleans(),
       st.sampled_from(["", "title: T\ntopic: coffee\nwords: 800\nsections:\n- id: a\n  title: A\n  words: 1\n"
                           "  brief: "]))
def test_deep_nesting_is_refused_quickly(tmp_path, depth, opener, closed, prefix):
    closer = {"[": "]", "{a: ": "}", "- ": "", "{? ": "}", "[{a: ": "}]"}[opener]
    if opener == "- " and prefix:  # a block sequence starts on its own line
        prefix = prefix.rstrip() + "\n    "
    text = prefix + opener * depth + "x" + (closer * depth if closed else "") + "\n"
    message = refuses_quickly(tmp_path, text)
    if depth > 64:
        assert message is not None and "levels deep" in message


# any character, with YAML's troublemakers made common: indicators, and for briefs (titles must
# be one line) line breaks of every kind
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_INLINE = st.one_of(st.characters(blacklist_characters=_BREAKS), st.sampled_from(list("\t #:-?'\"[]{},&*!|>%@`~")))
_ANY = st.one_of(_INLINE, st.sampled_from(list(_BREAKS)))


@FUZZ
@given(st.lists(st.text(_INLINE, min_size=1, max_size=40), min_size=1, max_size=6), st.text(_ANY, max_size=60))
@example(["No", "0600"], "a NEL\x85inside")  # found by this test: PyYAML wrote NEL raw, then read a space
@example(["1e5"], "ends with NEL\x85")
def test_any_text_round_trips_or_is_refused_on_one_line(tmp_path, titles, brief):
    raw = {"title": titles[0], "topic": brief or "coffee", "words": 800,
           "sections": [{"id": f"s{i}", "title": t, "brief": brief, "words": 1} for i, t in enumerate(titles)]}
    try:
        outline = parse_outline(raw)
    except OutlineError as err:
        assert "\n" not in str(err)
        return
    path = tmp_path / "o.yaml"
    path.write_text(dump_outline(outline), encoding="utf-8")
    assert load_outline(path) == outline
