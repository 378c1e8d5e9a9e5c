"""Outline refusals where a list is expected but something else is written: the error location
ends at 'sections' or 'children'. Mutation testing found this path (which must not index past the
end of the location) unguarded in the fast suite."""

from __future__ import annotations

import pytest

from longwriter.errors import OutlineError
from longwriter.outline import parse_outline


@pytest.mark.parametrize("sections, message", [
    (5, "document, field 'sections': must be a list, not a number"),
    ([{"id": "a", "title": "A", "words": 1, "children": 5}],
     "section 'a', field 'children': must be a list, not a number"),
    ([{"id": "a", "title": "A", "words": 1, "children": [{"id": "b", "title": "B", "words": "x"}]}],
     "section 'b', field 'words': must be a whole number, not the text 'x'"),
    ([5], "section 1 (no usable id): must be a mapping of fields, not a number"),
])
def test_a_wrong_shape_is_located_precisely(sections, message):
    """parse_outline(): a non-list 'sections'/'children' (and errors below them) name the right place."""
    with pytest.raises(OutlineError) as err:
        parse_outline({"title": "C", "topic": "coffee", "words": 100, "sections": sections})
    assert str(err.value) == message


@pytest.mark.parametrize("extra_at, message", [
    ("document", "document, field 'bogus': unknown field (allowed: title, topic, audience, style, language, words, "
                 "sections)"),
    ("section", "section 'a', field 'bogus': unknown field (allowed: id, title, brief, words, depends_on, contains, children)"),
])
def test_an_unknown_field_lists_the_fields_allowed_where_it_was_written(extra_at, message):
    """parse_outline(): a document-level unknown field lists document fields; a section-level one, section fields."""
    section = {"id": "a", "title": "A", "words": 1, **({"bogus": 2} if extra_at == "section" else {})}
    raw = {"title": "C", "topic": "coffee", "words": 100, "sections": [section],
           **({"bogus": 1} if extra_at == "document" else {})}
    with pytest.raises(OutlineError) as err:
        parse_outline(raw)
    assert str(err.value) == message


def test_the_first_problem_says_how_many_more_there_are():
    """parse_outline(): one problem is reported alone; two say '(and 1 more problems)', three '(and 2 ...)'."""
    one = {"title": "C", "topic": "coffee", "words": 100, "sections": [{"id": "a", "title": "A", "words": "y"}]}
    with pytest.raises(OutlineError) as err:
        parse_outline(one)
    assert str(err.value) == "section 'a', field 'words': must be a whole number, not the text 'y'"
    two = {"title": "C", "topic": "coffee", "words": "x", "sections": [{"id": "a", "title": "A", "words": "y"}]}
    with pytest.raises(OutlineError) as err:
        parse_outline(two)
    assert str(err.value).endswith("not the text 'x' (and 1 more problems)")
    three = {"title": "C", "topic": "coffee", "words": "x",
             "sections": [{"id": "a", "title": "A", "words": "y", "brief": 3}]}
    with pytest.raises(OutlineError) as err:
        parse_outline(three)
    assert str(err.value).endswith("not the text 'x' (and 2 more problems)")
