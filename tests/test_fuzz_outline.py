"""Fuzz the outline loader: any input either loads into a valid outline or raises the
project's own OutlineError (never another exception)."""

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longwriter.errors import OutlineError
from longwriter.outline import dump_outline, load_outline

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
    import copy

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
