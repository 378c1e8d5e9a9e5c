"""The outline loader against hostile or careless input, one test per class of problem, several
inputs each. Every refusal is an OutlineError (exit code 3) with a one-line message naming the
file, the section and the field; nothing hangs, recurses without bound or takes much memory."""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc

import pytest
import yaml

from longwriter import outline as outline_module
from longwriter.errors import OutlineError
from longwriter.outline import (
    MAX_BRIEF_CHARS,
    MAX_DEPENDS_ON,
    MAX_ID_CHARS,
    MAX_LEAVES,
    MAX_OUTLINE_BYTES,
    MAX_SECTIONS,
    MAX_TITLE_CHARS,
    MAX_TOPIC_CHARS,
    MAX_WORDS,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    MIN_LEAF_WORDS,
    dump_outline,
    load_outline,
    parse_outline,
)

HEAD = "title: T\ntopic: coffee\nwords: 1000\nsections:\n"


def doc(sections: list[dict], words: int = 1000, **extra) -> dict:
    return {"title": "T", "topic": "coffee", "words": words, "sections": sections, **extra}


def sec(sid: str, words: int = 1, **extra) -> dict:
    return {"id": sid, "title": f"Title {sid}", "words": words, **extra}


def refused_file(tmp_path, text: str | bytes, name: str = "outline.yaml") -> str:
    """Load ``text`` from a file; it must be refused with one line starting with the file name."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    message = refused(load_outline, path)
    assert message.startswith(f"{path}: "), message
    return message


def refused(load, arg) -> str:
    """``load(arg)`` must raise OutlineError (exit code 3) with a one-line message."""
    with pytest.raises(OutlineError) as err:
        load(arg)
    assert type(err.value) is OutlineError and err.value.exit_code == 3
    message = str(err.value)
    assert message and "\n" not in message and "\r" not in message, message
    return message


def refused_both(tmp_path, data: dict) -> str:
    """The same data as a file and through parse_outline: same refusal, same message."""
    direct = refused(parse_outline, data)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's is faster for the big ones
    from_file = refused_file(tmp_path, yaml.dump(data, Dumper=dumper, allow_unicode=True))
    assert from_file.endswith(": " + direct), (from_file, direct)
    return direct


def within(seconds: float, fn, *args):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it takes longer."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{fn.__name__} still running after {seconds}s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ---------------------------------------------------------------- 1. size and denial of service


def _fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: "/dev/zero", "not a regular file (a device)"),
    (lambda tmp: "/dev/null", "not a regular file (a device)"),
    (lambda tmp: tmp, "not a regular file (a directory)"),
    (_fifo, "not a regular file (a FIFO)"),
    (lambda tmp: tmp / "missing.yaml", "no such file"),
])
def test_paths_that_are_not_regular_files_are_refused_without_reading(tmp_path, make, fragment):
    path = make(tmp_path)
    if not os.path.exists(path):
        assert fragment == "no such file"
    message = within(5, refused, load_outline, path)
    assert message == f"{path}: {fragment}"


@pytest.mark.parametrize("size", [MAX_OUTLINE_BYTES + 1, 3_000_000, 20_000_000])
def test_files_over_the_byte_limit_are_refused(tmp_path, size):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:  # a valid outline followed by a long comment
        f.write(HEAD.encode() + b"- {id: a, title: A, words: 1}\n#")
        f.truncate(size)
    tracemalloc.start()
    message = refused(load_outline, path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert message == f"{path}: larger than 2 MiB; an outline is far smaller"
    assert peak < 3 * MAX_OUTLINE_BYTES  # read at most the limit, never the whole file


def test_a_file_of_exactly_the_byte_limit_is_read(tmp_path):
    text = HEAD + "- {id: a, title: A, words: 1}\n#"
    path = tmp_path / "full.yaml"
    path.write_bytes((text + "x" * (MAX_OUTLINE_BYTES - len(text) - 1) + "\n").encode())
    assert path.stat().st_size == MAX_OUTLINE_BYTES
    assert load_outline(path).leaves()[0].id == "a"


def _laughs(levels: int, fan: int, leaf: str, wrap: str = "[{}]") -> str:
    """A 'billion laughs': each anchor is a list of ``fan`` aliases of the one before."""
    lines = [f"l0: &l0 {leaf}"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} " + wrap.format(", ".join([f"*l{i - 1}"] * fan)))
    return "\n".join(lines) + "\n"


def _children_laughs(levels: int, fan: int) -> str:
    """The same through sections' children: a valid-looking outline of 9**9 sections."""
    lines = ["title: T", "topic: coffee", "words: 1000", "sections:", "- &s0 {id: x, title: X, words: 1}"]
    for i in range(1, levels + 1):
        kids = ", ".join([f"*s{i - 1}"] * fan)
        lines.append(f"- &s{i} {{id: x{i}, title: X, words: 1, children: [{kids}]}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, fragment", [
    (_laughs(9, 9, "[lol]"), "values once aliases are expanded"),
    (_laughs(9, 10, "'lol'"), "values once aliases are expanded"),
    (_laughs(5, 200, "{a: b}"), "values once aliases are expanded"),
    (_laughs(9, 9, "[lol]", wrap="{{k: [{}]}}"), "values once aliases are expanded"),
    (_children_laughs(9, 9), "values once aliases are expanded"),
    (HEAD + _laughs(30, 2, "{id: a, title: A, words: 1}").replace("l0:", "- l0:").replace("\nl", "\n  l"),
     "values once aliases are expanded"),
    ("a: &a [1, *a]\n", "alias '*a' is used inside the node it names"),
    (HEAD + "- &s {id: a, title: A, words: 1, children: [*s]}\n", "alias '*s' is used inside the node it names"),
])
def test_alias_bombs_are_refused_fast_and_small(tmp_path, text, fragment):
    tracemalloc.start()
    started = time.perf_counter()
    message = within(10, refused_file, tmp_path, text)
    elapsed, peak = time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert fragment in message and "line " in message, message
    assert elapsed < 3 and peak < 50_000_000, (elapsed, peak)


def test_aliases_within_the_limits_still_work(tmp_path):
    text = HEAD + "- &s {id: a, title: A, words: 1, brief: &b shared brief}\n- {id: b, title: B, words: 1, brief: *b}\n"
    outline = load_outline(_write(tmp_path, text))
    assert [s.brief for s in outline.leaves()] == ["shared brief", "shared brief"]


def _write(tmp_path, text: str):
    path = tmp_path / "outline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text", [
    "[" * 10_000 + "]" * 10_000,
    "[" * 1_000_000,
    "{a: " * 10_000 + "}" * 10_000,
    "- " * 10_000 + "x\n",
    "".join("  " * i + "a:\n" for i in range(200)) + "  " * 200 + "b\n",
    HEAD + "- " + "{id: x, title: X, words: 1, children: [" * 300 + "]}" * 300 + "\n",
])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, text):
    limit = sys.getrecursionlimit()
    message = within(10, refused_file, tmp_path, text)
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in message and "line " in message, message
    assert sys.getrecursionlimit() == limit


def _nested(depth: int) -> dict:
    node = sec(f"n{depth}")
    for level in range(depth - 1, 0, -1):
        node = sec(f"n{level}", children=[node])
    return doc([node])


def test_deep_or_cyclic_python_data_is_bounded_the_same_way():
    deep: dict = {}
    node = deep
    for _ in range(100_000):  # built iteratively: Python itself would not recurse this far
        node["x"] = {}
        node = node["x"]
    assert "nests more than 64 levels deep" in refused(parse_outline, deep)
    cyclic = doc([sec("a")])
    cyclic["sections"][0]["children"] = cyclic["sections"]
    assert "nests more than 64 levels deep" in refused(parse_outline, cyclic)
    shared = [sec("a")]
    for _ in range(30):  # a billion laughs of shared Python lists
        shared = [shared, shared]
    assert f"more than {MAX_YAML_NODES:,} values" in refused(parse_outline, doc(shared))


@pytest.mark.parametrize("depth, where", [(6, "n5"), (7, "n5"), (30, "n5"), (200, None)])
def test_sections_nest_at_most_five_levels(tmp_path, depth, where):
    message = refused(parse_outline, _nested(depth))
    if where:
        assert message == (f"section '{where}', field 'children': sections nested more than 5 levels deep "
                           "(headings stop at ######)")
        assert refused_both(tmp_path, _nested(depth)) == message
    else:  # far too deep to validate at all
        assert "nests more than 64 levels deep" in message
    assert parse_outline(_nested(5)).leaves()[0].id == "n5"


def _many(n: int, per: int = 0) -> dict:
    kids = lambda i: {"children": [sec(f"s{i}k{j}") for j in range(per)]} if per else {}  # noqa: E731
    return doc([sec(f"s{i}", **kids(i)) for i in range(n)], words=MAX_WORDS)


@pytest.mark.parametrize("data, message", [
    (_many(MAX_LEAVES + 1), f"document, field 'sections': {MAX_LEAVES + 1:,} sections to write; at most 1,000"),
    (_many(700, 2), "document, field 'sections': more than 2,000 sections"),
    (_many(MAX_SECTIONS // 2 + 1, 1), "document, field 'sections': more than 2,000 sections"),
    (doc([sec("a")], words=MAX_WORDS + 1), "document, field 'words': at most 200,000"),
    (doc([sec("a", words=10**30)]), "section 'a', field 'words': at most 200,000"),
    (doc([sec("a")], topic="t" * (MAX_TOPIC_CHARS + 1)),
     "document, field 'topic': is 2,001 characters long; at most 2,000"),
    (doc([sec("a")], title="t" * (MAX_TITLE_CHARS + 1)),
     "document, field 'title': is 301 characters long; at most 300"),
    (doc([sec("a", title="t" * (MAX_TITLE_CHARS + 1))]),
     "section 'a', field 'title': is 301 characters long; at most 300"),
    (doc([sec("a", brief="b" * (MAX_BRIEF_CHARS + 1))]),
     "section 'a', field 'brief': is 2,001 characters long; at most 2,000"),
    (doc([sec("a")], style="s" * (MAX_BRIEF_CHARS + 1)),
     "document, field 'style': is 2,001 characters long; at most 2,000"),
    (doc([sec("a" * (MAX_ID_CHARS + 1))]), "field 'id': must be 1 to 80 characters without spaces"),
    (doc([sec("a b")]), "section 'a b', field 'id': must be 1 to 80 characters without spaces"),
    (doc([sec("a", title="two\nlines")]), "section 'a', field 'title': must be one line"),
    (doc([sec("a", title="   ")]), "section 'a', field 'title': must not be blank"),
    (doc([sec(f"s{i}") for i in range(60)] + [sec("z", depends_on=[f"s{i}" for i in range(MAX_DEPENDS_ON + 1)])],
         words=MAX_WORDS), "section 'z', field 'depends_on': 51 entries; at most 50"),
    (doc([sec(f"s{i}", depends_on=[f"s{j}" for j in range(max(0, i - 40), i)]) for i in range(60)], words=MAX_WORDS),
     "document: 1,580 depends_on entries in all; at most 1,000"),
    (doc([sec("a", children=[sec(f"a{i}") for i in range(400)]),
          sec("b", depends_on=["a"], children=[sec(f"b{i}") for i in range(300)])], words=MAX_WORDS),
     "section 'b', field 'depends_on': the dependencies link more than 100,000 pairs of sections"),
])
def test_outline_bounds(tmp_path, data, message):
    got = refused_both(tmp_path, data)
    assert message in got, got


def test_the_largest_outline_allowed_loads_quickly(tmp_path):
    """Every bound at once, just inside: 2,000 sections, 1,000 leaves, 999 dependencies,
    full-length titles: it must load (the YAML value bound leaves room for it) in seconds."""
    chapters = [sec(f"c{i}", title="t" * MAX_TITLE_CHARS, brief="b" * 500,
                    children=[sec(f"c{i}s", depends_on=[f"c{i - 1}"] if i else [])]) for i in range(MAX_LEAVES)]
    outline = parse_outline(doc(chapters, words=MAX_WORDS))
    path = _write(tmp_path, dump_outline(outline))
    started = time.perf_counter()
    assert load_outline(path) == outline
    assert time.perf_counter() - started < 10
    assert sum(1 for _ in outline.walk()) == MAX_SECTIONS


@pytest.mark.parametrize("data, message", [
    (doc([sec("a", 1), sec("b", 100)], words=300),
     "section 'a', field 'words': gets only 3 of the document's 300 words (at least 10); "
     "raise its words or remove sections"),
    (doc([sec("a", 7, children=[sec("a1"), sec("a2")]), sec("b", 593)], words=600),
     "section 'a1', field 'words': gets only 4 of the document's 600 words"),
    (doc([sec(c) for c in "abcd"], words=30),
     "document, field 'words': 30 words cannot give 4 sections 10 words each; raise words or remove sections"),
    (doc([sec(c) for c in "abcd"], words=3), "document, field 'words': 3 words cannot give 4 sections"),
    (doc([sec("a", 1, children=[sec("a1"), sec("a2"), sec("a3")]), sec("b", 100_000)], words=1000),
     "section 'a', field 'words': a budget of 1 words cannot be split over 3 sections; "
     "raise its words or remove sections"),
])
def test_leaf_budgets_have_a_floor(tmp_path, data, message):
    got = refused_both(tmp_path, data)
    assert got.startswith(message), got
    assert MIN_LEAF_WORDS == 10


# ---------------------------------------------------------------- 2. YAML semantics


@pytest.mark.parametrize("text, message", [
    (HEAD + "- {id: a, title: A, words: 1}\nsections:\n- {id: b, title: B, words: 1}\n",
     "line 6: duplicate key 'sections'"),
    (HEAD + "- id: a\n  id: b\n  title: A\n  words: 1\n", "line 6: duplicate key 'id' in section 'a'"),
    (HEAD + "- {id: a, title: A, words: 1, title: B}\n", "line 5: duplicate key 'title' in section 'a'"),
    ("title: T\ntitle: U\ntopic: coffee\nwords: 100\nsections: [{id: a, title: A, words: 1}]\n",
     "line 2: duplicate key 'title'"),
    (HEAD + "- id: c1\n  title: C\n  words: 1\n  children:\n  - {id: k, title: K, words: 1, words: 2}\n",
     "line 9: duplicate key 'words' in section 'k'"),
    (HEAD + "- {id: a, title: A, words: 1, 'words': 2}\n", "line 5: duplicate key 'words' in section 'a'"),
    (HEAD + "- {id: a, title: A, words: 1}\n1: x\n", "line 6: a key must be text, not a number"),
    (HEAD + "- {id: a, title: A, words: 1}\n? [x]\n: y\n", "line 6: a key must be text, not a list"),
])
def test_duplicate_and_non_text_keys_are_refused(tmp_path, text, message):
    got = refused_file(tmp_path, text)
    assert got.endswith(": " + message), got


@pytest.mark.parametrize("field, written, value", [
    ("title", "No", "No"), ("title", "yes", "yes"), ("title", "off", "off"), ("title", "Y", "Y"),
    ("id", "on", "on"), ("id", "n", "n"), ("brief", "yes", "yes"), ("brief", "NO", "NO"),
    ("title", "1:30", "1:30"), ("title", "2024-01-01", "2024-01-01"), ("title", "=", "="), ("title", "<<", "<<"),
    ("brief", "1_000", "1_000"), ("brief", "~", None), ("title", "True", True), ("title", "0600", 600),
    ("words", "0600", 600), ("words", "+12", 12), ("words", "0o17", 15), ("words", "0x1f", 31), ("words", "012", 12),
])
def test_scalars_follow_the_yaml_1_2_core_schema(tmp_path, field, written, value):
    section = {"id": "a", "title": "A", "brief": "", "words": "1"} | {field: written}
    text = HEAD + "- {" + ", ".join(f"{k}: {v}" for k, v in section.items()) + "}\n"
    text = text.replace("brief: ,", "brief: '',")
    loaded = yaml.load(text, Loader=outline_module._OutlineLoader)  # the loader's own view of the scalar
    assert loaded["sections"][0][field] == value and type(loaded["sections"][0][field]) is type(value)
    if isinstance(value, str) and value:
        assert getattr(load_outline(_write(tmp_path, text)).sections[0], field) == value
    assert yaml.safe_load("x: no\ny: 0600\nz: 1:30") == {"x": False, "y": 384, "z": 90}  # SafeLoader untouched


@pytest.mark.parametrize("field, written, message", [
    ("title", "12", "section 'a', field 'title': must be text, not a number"),
    ("title", "true", "section 'a', field 'title': must be text, not true/false"),
    ("title", "[x]", "section 'a', field 'title': must be text, not a list"),
    ("title", "", "section 'a', field 'title': must be text, not empty"),
    ("brief", "{x: 1}", "section 'a', field 'brief': must be text, not a mapping"),
    ("brief", "1.5", "section 'a', field 'brief': must be text, not the decimal number 1.5"),
    ("depends_on", "[1]", "section 'a', field 'depends_on': must be text, not a number"),
    ("depends_on", "b", "section 'a', field 'depends_on': must be a list, not the text 'b'"),
    ("children", "[1]", "section 1.1 (no usable id): must be a mapping of fields, not a number"),
    ("id", "3", "section '3', field 'id': must be text, not a number"),
    ("id", "true", "section 1 (no usable id), field 'id': must be text, not true/false"),
    ("id", "TRUE", "section 1 (no usable id), field 'id': must be text, not true/false"),
    ("id", "~", "section 1 (no usable id), field 'id': must be text, not empty"),
])
def test_non_text_where_text_is_expected(tmp_path, field, written, message):
    section = {"id": "a", "title": "A", "words": "1"} | {field: written}
    text = HEAD + "- {" + ", ".join(f"{k}: {v}" for k, v in section.items()) + "}\n"
    got = refused_file(tmp_path, text)
    assert got.split(": ", 1)[1].startswith(message), got
    assert "'True'" not in got


@pytest.mark.parametrize("written, message", [
    ('"600"', "must be a whole number, not the text '600'"),
    ("'12'", "must be a whole number, not the text '12'"),
    ("12.5", "must be a whole number, not the decimal number 12.5"),
    ("12.0", "must be a whole number, not the decimal number 12.0"),
    ("1e3", "must be a whole number, not the decimal number 1000.0"),
    (".nan", "must be a whole number, not the decimal number nan"),
    (".inf", "must be a whole number, not the decimal number inf"),
    ("-.Inf", "must be a whole number, not the decimal number -inf"),
    ("true", "must be a whole number, not true/false"),
    ("1_000", "must be a whole number, not the text '1_000'"),
    ("1:30", "must be a whole number, not the text '1:30'"),
    ("", "must be a whole number, not empty"),
    ("0", "Input should be greater than 0"),
    ("!!int abc", "malformed YAML at line 3: 'abc' is not a usable integer"),
    ("!!float abc", "malformed YAML at line 3: 'abc' is not a decimal number"),
    ("!!bool yes", "malformed YAML at line 3: 'yes' is not true or false"),
    ("!!int [1]", "malformed YAML at line 3: expected a scalar node, but found sequence"),
    ("9" * 5000, "malformed YAML at line 3: '9999"),
    ("!!binary MTIz", "malformed YAML at line 3: tag '!!binary' is not allowed in an outline"),
    ("!!python/object/apply:os.getpid []", "malformed YAML at line 3: tag '!!python/object/apply:os.getpid'"),
])
def test_words_must_be_a_whole_number(tmp_path, written, message):
    text = f"title: T\ntopic: coffee\nwords: {written}\nsections: [{{id: a, title: A, words: 1}}]\n"
    got = refused_file(tmp_path, text)
    where = "" if message.startswith("malformed") else "document, field 'words': "
    assert got.split(": ", 1)[1].startswith(where + message), got


@pytest.mark.parametrize("value, message", [
    (float("nan"), "must be a whole number, not the decimal number nan"),
    (float("inf"), "must be a whole number, not the decimal number inf"),
    (12.0, "must be a whole number, not the decimal number 12.0"),
    ("600", "must be a whole number, not the text '600'"),
    (True, "must be a whole number, not true/false"),
])
def test_words_from_python_are_just_as_strict(value, message):
    assert refused(parse_outline, doc([sec("a", words=value)])) == f"section 'a', field 'words': {message}"


# ---------------------------------------------------------------- 3. dependency messages


def _chapters(**deps) -> dict:
    """c1 (c1s1, c1s2 (c1s2a, c1s2b)), c2 (c2s1, c2s2), with depends_on set per id."""
    def node(sid, *kids):
        return sec(sid, children=list(kids), **({"depends_on": deps[sid]} if sid in deps else {}))
    return doc([node("c1", node("c1s1"), node("c1s2", node("c1s2a"), node("c1s2b"))),
                node("c2", node("c2s1"), node("c2s2"))])


@pytest.mark.parametrize("deps, message", [
    ({"c1s1": ["c1s1"]}, "section 'c1s1', field 'depends_on': a section cannot depend on itself"),
    ({"c1": ["c1"]}, "section 'c1', field 'depends_on': a section cannot depend on itself"),
    ({"c1s1": ["c1"]}, "section 'c1s1', field 'depends_on': 'c1' contains this section"),
    ({"c1s2a": ["c1"]}, "section 'c1s2a', field 'depends_on': 'c1' contains this section"),
    ({"c1s2b": ["c2s1", "c1s2"]}, "section 'c1s2b', field 'depends_on': 'c1s2' contains this section"),
    ({"c1": ["c1s1"]}, "section 'c1', field 'depends_on': 'c1s1' is part of this section"),
    ({"c1": ["c1s2b"]}, "section 'c1', field 'depends_on': 'c1s2b' is part of this section"),
    ({"c2": ["c1", "c2s2"]}, "section 'c2', field 'depends_on': 'c2s2' is part of this section"),
    ({"c1s1": ["nowhere"]}, "section 'c1s1', field 'depends_on': unknown section 'nowhere'"),
    ({"c1": ["c2"], "c2s1": ["c1s2a"]}, "field 'depends_on': dependency cycle"),
    ({"c1s1": ["c2"], "c2": ["c1"]}, "field 'depends_on': dependency cycle"),
])
def test_dependency_mistakes_have_precise_messages(tmp_path, deps, message):
    got = refused_both(tmp_path, _chapters(**deps))
    assert message in got, got
    if "cycle" not in message:
        assert "cycle" not in got


def test_valid_dependencies_across_branches_still_load():
    outline = parse_outline(_chapters(c2=["c1"], c2s2=["c1s2", "c2s1"]))
    assert outline.find("c2").depends_on == ["c1"]


def test_messages_stay_on_one_line_whatever_the_input_contains(tmp_path):
    for data in (doc([sec("a", depends_on=["x\ny" * 200])]), doc([sec("a\nb")]),
                 doc([sec("a", **{"bad\nkey": 1})]), doc([sec("a", title="\u2028")])):
        assert len(refused_both(tmp_path, data)) < 300
    assert "'a\\u2028b'" not in refused_file(tmp_path, HEAD + '- {id: a, title: "x\\u2028y", words: 1}\n')


FALLBACK_CASES = [
    "[" * 10_000 + "]" * 10_000,
    "- " * 5_000 + "x\n",
    _laughs(9, 9, "[lol]"),
    _children_laughs(9, 9),
    "a: &a [1, *a]\n",
    HEAD + "- {id: a, title: A, words: 1}\nsections:\n- {id: b, title: B, words: 1}\n",
    HEAD + "- {id: a, title: A, words: 0600, brief: yes, title: No}\n",
    HEAD + "- {id: on, title: No, words: 1, brief: 1:30}\n- {id: b, title: '0600', words: 0x1f}\n",
    "title: T\ntopic: coffee\nwords: !!int abc\nsections: []\n",
    "title: T\ntopic: coffee\nwords: 12.5\nsections: [{id: a, title: A, words: 1}]\n",
    "title: a\x01b\n",
    "title: 咖啡\ntopic: 咖啡的历史\x1b\n",
    "\ufeff" + HEAD + "- {id: a, title: 咖啡, words: 1}\n",
]


def _outcome(path) -> str:
    try:
        outline = load_outline(path)
    except OutlineError as err:
        return "refused: " + str(err).split(": ", 1)[1]
    return "loaded: " + outline.model_dump_json()


def test_pure_python_yaml_gives_the_same_results(tmp_path):
    """Without libyaml the loader falls back to PyYAML's pure-Python parser: same bounds, same
    messages (checked in a fresh interpreter, where the C classes can be hidden before import)."""
    import json
    import subprocess

    paths = []
    for i, text in enumerate(FALLBACK_CASES):
        paths.append(str(tmp_path / f"case{i}.yaml"))
        (tmp_path / f"case{i}.yaml").write_text(text, encoding="utf-8")
    script = (
        "import json, sys, yaml\n"
        "for name in ('CSafeLoader', 'CSafeDumper', 'CLoader', 'CDumper'): yaml.__dict__.pop(name, None)\n"
        "from longwriter import outline\n"
        "assert outline._YAMLBase is yaml.SafeLoader\n"
        "from tests.test_outline_limits import _outcome\n"
        "print(json.dumps([_outcome(p) for p in json.loads(sys.argv[1])]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps(paths)], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [_outcome(p) for p in paths]
