"""User prompt templates are untrusted: every failure is a one-line PromptError naming the
template, and no template can take long or build anything large. No model is loaded."""

from __future__ import annotations

import os
import re
import time
import tracemalloc
from pathlib import Path

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment

from longwriter.errors import PromptError
from longwriter.prompts import MAX_RENDER_CHARS, MAX_TEMPLATE_BYTES, Prompts, builtin_dir

# Values like the ones the planner and writer pass to each built-in template.
VALUES = {
    "system": {"style": "clear prose", "audience": "general readers", "language": "zh"},
    "plan_titles": {"topic": "Coffee", "words": 1200, "parent": "", "n": 5,
                    "sources": ["- notes.md: Origins", "> Coffee came from Ethiopia."]},
    "doc_title": {"topic": "Coffee [draft]"},
    "brief": {"topic": "Coffee", "title": "Origins", "parent": "History"},
    "section": {"title": "Coffee", "topic": "Coffee", "outline": ["1. Origins", "2. Trade"], "summary": "s",
                "chapters": ["1 Origins", "2 Trade", "..."], "sources": ["Coffee came from Ethiopia."],
                "tail": "t", "number": 2, "section_title": "Trade", "chapter": "", "brief": "b", "words": 300,
                "feedback": ["too short", "off topic"], "contains": ["list", "table", "code", "math", "mermaid"]},
    "summary": {"previous": "p", "section_title": "Trade", "text": "Ships carried beans.", "words": 60},
    "judge": {"topic": "Coffee", "section_title": "Trade", "brief": "b", "text": "Ships carried beans."},
    "feedback": {"problems": ["off_topic", "off_brief", "retold", "looped", "too_short", "judged_off",
                              "wrong_language", "meta_talk", "ungrounded"], "topic": "Coffee", "section_title": "Trade",
                 "brief": "b", "closest": "Origins", "language": "zh"},
    "wrappers": {},
}


def folder(tmp_path: Path, **files: str | bytes) -> Path:
    """A prompts directory holding ``files`` (name without .j2 -> source)."""
    root = tmp_path / "prompts"
    root.mkdir(exist_ok=True)
    for name, source in files.items():
        path = root / f"{name}.j2"
        path.write_bytes(source if isinstance(source, bytes) else source.encode())
    return root


def assert_one_line(err: PromptError, template: str = "section.j2") -> str:
    message = str(err)
    assert "\n" not in message and len(message) < 300, message
    assert f"'{template}'" in message, message
    assert "Traceback" not in message
    return message


def render_error(tmp_path: Path, source: str, **values) -> str:
    """Render ``source`` as the user's section.j2; the one-line PromptError message."""
    prompts = Prompts(folder(tmp_path, section=source))
    with pytest.raises(PromptError) as info:
        prompts.render("section", **values)
    assert info.value.exit_code == 7
    return assert_one_line(info.value)


def test_builtin_templates_render_as_plain_jinja_would():
    plain = SandboxedEnvironment(loader=jinja2.FileSystemLoader(str(builtin_dir())), undefined=jinja2.StrictUndefined,
                                 trim_blocks=True, lstrip_blocks=True)
    prompts = Prompts()
    for name, values in VALUES.items():
        assert prompts.render(name, **values) == plain.get_template(f"{name}.j2").render(**values).strip()
        zh = prompts.localized(name, "zh-Hans")
        if zh != name:
            assert prompts.render(zh, **values) == plain.get_template(f"{zh}.j2").render(**values).strip()


def test_every_builtin_template_is_rendered_by_the_test_above():
    names = {p.name.removesuffix(".j2").removesuffix(".zh") for p in builtin_dir().glob("*.j2")}
    assert names == set(VALUES)


def test_a_chinese_document_gets_its_prompts_in_chinese_unless_the_user_overrides_the_english_one(tmp_path):
    prompts = Prompts()
    assert prompts.localized("section", "zh") == "section.zh" and prompts.localized("section", "en") == "section"
    assert "简体中文" in prompts.render("section.zh", **VALUES["section"])
    # A user's own section.j2 wins over the built-in section.zh.j2 (it comes from an earlier folder)...
    mine = Prompts(folder(tmp_path, section="mine: {{ topic }}"))
    assert mine.localized("section", "zh") == "section"
    # ...and their own section.zh.j2 is used for Chinese documents.
    (tmp_path / "prompts" / "section.zh.j2").write_text("我的：{{ topic }}")
    assert Prompts(tmp_path / "prompts").localized("section", "zh") == "section.zh"


# Ordinary template features keep working, with the same output as jinja's own sandbox.
LEGIT = [
    "{% for x in outline %}{{ loop.index }}/{{ loop.length }} {{ x }}{% if not loop.last %}, {% endif %}"
    "{% else %}none{% endfor %}",
    "{% macro item(t, n=1) %}[{{ n }}:{{ t|upper }}]{% endmacro %}{% for t in outline %}{{ item(t, loop.index) }}"
    "{% endfor %}",
    "{{ outline|join(' | ') }} {{ outline|length }} {{ outline[0][:3] }} {{ outline[-1:] }} {{ outline|reverse|list }}",
    "{{ 'a' ~ 1 ~ topic }} {{ '%s has %d parts' % (topic, 2) }} {{ '{} / {:>6}'.format(topic, 'x') }}",
    "{{ '%(t)s'|format(t=topic) }} {{ topic|center(20) }}|{{ topic|indent(2, true) }} {{ (topic * 3)|wordwrap(8) }}",
    "{% set d = {'a': 1, 'b': [1, 2]} %}{{ d|dictsort }} {{ d.b|sum }} {{ d['a'] + 2 ** 10 }} {{ 'b' in d }}",
    "{% set ns = namespace(n=0) %}{% for x in outline %}{% set ns.n = ns.n + x|length %}{% endfor %}{{ ns.n }}",
    "{% for x in [[1, [2]], [3]] recursive %}<{{ x if x is number else loop(x) }}>{% endfor %}",
    "{{ outline|map('upper')|select('ne', 'x')|list }} {{ range(3)|batch(2)|list }} {{ outline|tojson }}",
    "{% filter upper %}{{ topic }}{% endfilter %} {% set block %}{{ topic }}!{% endset %}{{ block * 2 }}",
    "{{ [3, 1, 2]|sort|first }} {{ topic.replace('o', '0') }} {{ ', '.join(outline) }} {{ topic.split()|last }}",
]


@pytest.mark.parametrize("source", LEGIT)
def test_ordinary_templates_match_jinja(tmp_path, source):
    values = {"topic": "History of coffee", "outline": ["Origins", "Trade", "Cafes"]}
    expected = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(source).render(**values)
    assert Prompts(folder(tmp_path, section=source)).render("section", **values) == expected.strip()


def test_override_replaces_only_its_own_template(tmp_path):
    prompts = Prompts(folder(tmp_path, section="mine: {{ topic }}"))
    assert prompts.render("section", topic="x") == "mine: x"
    assert prompts.render("system", **VALUES["system"]).startswith("You are an expert writer")


def test_large_values_from_the_program_are_not_refused():
    text = "word " * (MAX_RENDER_CHARS // 2)  # the limit grows with what the program passes in
    assert Prompts().render("judge", **{**VALUES["judge"], "text": text}).count("word") == MAX_RENDER_CHARS // 2


@pytest.mark.parametrize("source, fragment", [
    ("{{ 1/0 }}", "ZeroDivisionError: division by zero"),
    ("{{ undefined_var }}", "'undefined_var' is undefined"),
    ("{{ x.y.z }}", "'x' is undefined"),
    ("{{ topic.y.z }}", "has no attribute 'y'"),
    ("{{ range(10**7)|list }}", "OverflowError"),
    ("{% include 'section.j2' %}", "nest too deeply"),
    ("{% extends 'section.j2' %}", "nest too deeply"),
    ("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(1) }}", "nest too deeply"),
    ("{% include 'missing.j2' %}", "template 'missing.j2' not found"),
    ("{{ ''.__class__.__mro__ }}", "__class__"),
    ("{% set x = [1] %}{{ x.append(2) }}", "unsafe"),  # the immutable sandbox
    ("{{ lipsum(5) }}", "'lipsum' is undefined"),
    ("{{ {}['two\\nlines'] }}", "has no attribute 'two"),  # a message over two lines
])
def test_runtime_failures_are_one_line(tmp_path, source, fragment):
    assert fragment in render_error(tmp_path, source, topic="coffee")


def test_error_names_the_line(tmp_path):
    assert "'section.j2' line 3: ZeroDivisionError" in render_error(tmp_path, "a\nb\n{{ 1/0 }}\n")


def test_multi_line_messages_become_one_line(tmp_path):
    class Loud:
        def __str__(self):
            raise ValueError("first line\nsecond line")

    message = render_error(tmp_path, "{{ loud }}", loud=Loud())
    assert message.endswith("ValueError: first line")


def test_control_characters_in_file_names(tmp_path):
    with pytest.raises(PromptError) as info:
        Prompts(folder(tmp_path, **{"bad\nname\x1b[31m": "{% if %}"}))
    assert "'bad?name?[31m.j2' line 1" in assert_one_line(info.value, "bad?name?[31m.j2")


def test_mutually_including_templates(tmp_path):
    prompts = Prompts(folder(tmp_path, section="{% include 'other.j2' %}", other="{% include 'section.j2' %}"))
    with pytest.raises(PromptError) as info:
        prompts.render("section")
    assert "nest too deeply" in assert_one_line(info.value)


def test_long_error_messages_are_cut(tmp_path):
    message = render_error(tmp_path, "{{ {}['" + "k" * 5000 + "'] }}")
    assert message.endswith("...")


@pytest.mark.parametrize("source, fragment", [
    ("{% raw %}never closed", "Missing end of raw directive"),
    ("{% if %}", "line 1"),
    ("{{ 1 +* 2 }}", "unexpected"),
    (b"caf\xe9 {{ topic }}", "not UTF-8 text (byte 0xe9 at offset 3)"),
    ("{% for %}" + "x" * 10, "line 1"),
    ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nest too deeply"),
    ("{% if 1 %}" * 200 + "x" + "{% endif %}" * 200, "IndentationError"),  # Python's own limit
])
def test_bad_templates_are_refused_when_loaded(tmp_path, source, fragment):
    with pytest.raises(PromptError) as info:
        Prompts(folder(tmp_path, section=source))
    assert fragment in assert_one_line(info.value)


def test_every_j2_file_is_compiled_up_front(tmp_path):
    with pytest.raises(PromptError) as info:
        Prompts(folder(tmp_path, section="fine", helper="{% endfor %}"))
    assert_one_line(info.value, "helper.j2")


def test_directory_named_like_a_template(tmp_path):
    (folder(tmp_path) / "section.j2").mkdir()
    with pytest.raises(PromptError) as info:
        Prompts(tmp_path / "prompts")
    assert "not a regular file" in assert_one_line(info.value)


def test_fifo_named_like_a_template_is_never_opened(tmp_path):
    os.mkfifo(folder(tmp_path) / "section.j2")  # opening it to read would block for ever
    with pytest.raises(PromptError) as info:
        Prompts(tmp_path / "prompts")
    assert "not a regular file" in assert_one_line(info.value)


def test_oversized_template_file(tmp_path):
    with pytest.raises(PromptError) as info:
        Prompts(folder(tmp_path, section="x" * (MAX_TEMPLATE_BYTES + 1)))
    assert "larger than" in assert_one_line(info.value)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_file_that_cannot_be_read(tmp_path):
    (folder(tmp_path) / "section.j2").symlink_to("/proc/self/mem")  # a regular file; reading fails
    with pytest.raises(PromptError) as info:
        Prompts(tmp_path / "prompts")
    assert "cannot be read" in assert_one_line(info.value)


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="needs Linux /proc")
def test_endless_file_is_not_read_whole(tmp_path):
    (folder(tmp_path) / "section.j2").symlink_to("/proc/self/pagemap")  # "0 bytes", reads for ever
    with pytest.raises(PromptError) as info:
        Prompts(tmp_path / "prompts")
    assert "larger than" in assert_one_line(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission(tmp_path):
    path = folder(tmp_path, section="x") / "section.j2"
    path.chmod(0)
    with pytest.raises(PromptError) as info:
        Prompts(tmp_path / "prompts")
    assert "cannot be read (Permission denied)" in assert_one_line(info.value)


def test_missing_template_and_missing_folder(tmp_path):
    with pytest.raises(PromptError, match="prompt template 'nope.j2' not found"):
        Prompts().render("nope")
    with pytest.raises(PromptError, match="does not exist"):
        Prompts(tmp_path / "absent")


# Each of these would build gigabytes or run for hours unchecked.
BOMBS = [
    "{{ 'x' * 10**8 }}",
    "{{ 'x' * 10**4 * 10**4 }}",
    "{{ [1] * 10**8 }}",
    "{{ (1,) * 10**8 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{% set n = 10 ** 10 %}{{ n ** n }}",  # (jinja reads 10 ** 10 ** 10 as (10 ** 10) ** 10)
    "{% set n = 10 ** 20000 %}{{ n * n * n * n * n * n }}",
    "{{ '%0100000000d' % 1 }}",
    "{{ '%.100000000f' % 1.0 }}",
    "{{ '%*d' % (10**8, 1) }}",
    "{{ '%(a(b))0100000000d' % {'a(b)': 1} }}",
    "{{ ('%0100000d' * 1000) % ((1,) * 1000) }}",
    "{{ '%0100000000d'.encode() % 1 }}",
    "{{ '{:>100000000}'.format(1) }}",
    "{{ ('{:>' ~ 10**8 ~ '}').format(1) }}",
    "{{ '{0}' * 60000 }}{{ ('{0}' * 60000).format('x' * 100000) }}",
    "{{ '{0!r}'.format([['x' * 1000] * 1000] * 1000) }}",
    "{{ '{a:>100000000}'.format_map({'a': 1}) }}",
    "{{ 'x'.center(10**8) }}",
    "{{ 'x'.ljust(10**8) }}",
    "{{ 'x'.rjust(10**8) }}",
    "{{ 'x'.zfill(10**8) }}",
    "{{ '\t'.expandtabs(10**8) }}",
    "{{ ('\t' * 100000).expandtabs(100000) }}",
    "{{ ('x'|safe).center(10**8) }}",
    "{{ (10).to_bytes(10**8, 'big') }}",
    "{{ 'ab'.replace('a', 'x' * 10**6) }}",
    "{{ ('a' * 10**5).replace('a', 'x' * 10**5) }}",
    "{{ 'ab'.replace('a', 'x' * 10**5).replace('x', 'x' * 10**5) }}",
    "{{ ('a' * 100000).translate({97: 'x' * 100000}) }}",
    "{{ ('x' * 10**5).join('y' * 10**5) }}",
    "{{ ('x' * 10**5) | join('y' * 10**5) }}",
    "{{ range(100000)|join('x' * 100000) }}",
    "{{ 'x'|center(100000000) }}",
    "{{ ('a\n' * 100000)|indent(100000) }}",
    "{{ ('a\n' * 1000)|indent('x' * 100000) }}",
    "{{ '%0100000000d'|format(1) }}",
    "{{ ('a ' * 50000)|wordwrap(1, wrapstring='x' * 100000) }}",
    "{{ ('http://a ' * 20000)|urlize(target='x' * 100000) }}",
    "{{ [1]|batch(10**8, 'x')|list }}",
    "{{ [1]|slice(10**8)|list }}",
    "{{ 5|round(-10**8) }}",
    "{% set a = [[1] * 60000] * 60000 %}{{ a|sum(start=[])|length }}",
    "{{ [[1]*10]*10|tojson(indent=100000) }}",
    "{{ range(1000)|map('center', 150000)|list|length }}",
    "{% set a = ['x' * 100000] * 1000 %}{{ a }}",
    "{% set ns = namespace(a='x') %}{% for i in range(40) %}{% set ns.a = ns.a ~ ns.a %}{% endfor %}",
    "{% set ns = namespace(a='x') %}{% for i in range(40) %}{% set ns.a = ns.a + ns.a %}{% endfor %}",
    "{% set ns = namespace(a='x') %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a]|join %}{% endfor %}",
    "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns }}",
    "{% set ns = namespace(a=[1], b=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
    "{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ ns.a == ns.b }}",
    "{% set ns = namespace(a=(1,)) %}{% for i in range(40) %}{% set ns.a = (ns.a, ns.a) %}{% endfor %}"
    "{{ {ns.a: 1} }}",
    "{% set ns = namespace(a=(1,)) %}{% for i in range(40) %}{% set ns.a = (ns.a, ns.a) %}{% endfor %}{{ {}[ns.a] }}",
    "{% set ns = namespace(a=[1], b=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
    "{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ [ns.a].count(ns.b) }}",
    "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}"
    "{{ ns.a is in [1] }}",
    "{% set x = 'x' * 100000 %}{% for i in range(100000) %}{% if x == x[1:] %}{% endif %}{% endfor %}",
    "{% set x = ['x'] * 60000 %}{% set y = ['x'] * 60000 %}{% for i in range(100000) %}{% if x == y %}{% endif %}"
    "{% endfor %}",
    "{% set b %}{% for i in range(100000) %}{{ 'x' * 100000 ~ i }}{% endfor %}{% endset %}{{ b|length }}",
]

# ...and these would run for hours (memory is not their problem, and tracemalloc would
# slow them down twenty times, so only their time is measured).
SLOW_BOMBS = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 10 }}{% endfor %}{% for i in range(100000) %}x{% endfor %}",
    "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 10 }}{% endfor %}{% endmacro %}{{ m()|length }}",
    "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}",
    "{% for i in range(100000) %}{% include 'other.j2' %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'abc' is in 'xabc' }}{% endfor %}",
    ("{% set d = 0 %}{% include 'other.j2' %}",  # includes branching 2**40 times, no loop
     "{% set d = d + 1 %}{% if d < 40 %}{% include 'other.j2' %}{% include 'other.j2' %}{% endif %}"),
]


def refuse(tmp_path: Path, source: str | tuple[str, str]) -> float:
    """Render ``source`` as section.j2 (and other.j2, empty unless given); the seconds until refused."""
    section, other = source if isinstance(source, tuple) else (source, "")
    prompts = Prompts(folder(tmp_path, section=section, other=other))
    started = time.perf_counter()
    with pytest.raises(PromptError) as info:
        prompts.render("section")
    assert_one_line(info.value)
    return time.perf_counter() - started


@pytest.mark.parametrize("source", BOMBS)
def test_bombs_are_refused_quickly_and_small(tmp_path, source):
    tracemalloc.start()
    try:
        seconds = refuse(tmp_path, source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, f"{peak / 1e6:.0f} MB"
    assert seconds < 10, f"{seconds:.1f} s"  # well under a second here; generous for a busy machine


@pytest.mark.parametrize("source", SLOW_BOMBS)
def test_endless_work_is_refused_quickly(tmp_path, source):
    assert refuse(tmp_path, source) < 10  # about a second at worst here


@pytest.mark.parametrize("source, reason", [
    # Each check, seen through its own message (most bombs meet more than one check).
    ("{{ 'x' * 10**8 }}", "repeating a str 100,000,000 times would be"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "more than 50,000 loop steps"),
    ("{% for i in range(3) %}{{ 'x' * 100000 }}{% endfor %}", "the rendered text would be"),
    ("{% set b %}{% for i in range(100) %}{{ 'x' * 100000 ~ i }}{% endfor %}{% endset %}",
     "the template builds too much text"),
    ("{% set b %}{% for i in range(3) %}{{ 'x' * 100000 }}{% endfor %}{% endset %}done",
     "the output of a macro or block would be"),
    ("{{ '{:>100000000}'.format(1) }}", "a format field would be"),
    ("{{ range(20000)|map('center', 20)|list }}", "the items of an iterator would be"),
    ("{{ range(15000)|batch(1)|list|sum(start=[])|length }}", "sum() with a start that is not a number"),
    ("{% set x = 'x' * 150000 %}{{ x + x }}", "adding two values would be"),
    ("{% set x = 'x' * 150000 %}{{ x ~ x }}", "joining with ~ would be"),
    ("{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}"
     "{{ ns.a == 1 }}", "a compared value would be"),
    ("{% set ns = namespace(a=(1,)) %}{% for i in range(40) %}{% set ns.a = (ns.a, ns.a) %}{% endfor %}"
     "{{ {ns.a: 1} }}", "a compared value would be"),
    ("{% set ns = namespace(a=(1,)) %}{% for i in range(40) %}{% set ns.a = (ns.a, ns.a) %}{% endfor %}"
     "{{ {}[ns.a] }}", "a key would be"),
    ("{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}"
     "{{ [].count(ns.a) }}", "a call's argument would be"),
    ("{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}"
     "{{ ns.a is sameas 1 }}", "a tested value would be"),
    ("{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns }}",
     "a value would be"),
    ("{% set x = 'x' * 200000 %}{% for i in range(100) %}{{ x[1:] is none }}{% endfor %}",
     "the template builds too much text"),
    ("{% set x = 'x' * 200000 %}{% for i in range(1000) %}{{ x is none }}{% endfor %}",
     "the template looks through too much text"),
    ("{% for i in range(60000) %}{% include 'other.j2' %}{% endfor %}", "more than 50,000"),
])
def test_refusals_say_why(tmp_path, source, reason):
    prompts = Prompts(folder(tmp_path, section=source, other=""))
    with pytest.raises(PromptError, match="refused: " + re.escape(reason)):
        prompts.render("section")


def test_output_up_to_the_limit_is_fine(tmp_path):
    prompts = Prompts(folder(tmp_path, section="{{ 'x' * %d }}" % MAX_RENDER_CHARS))
    assert len(prompts.render("section")) == MAX_RENDER_CHARS
