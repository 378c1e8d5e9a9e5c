"""Prompt templates: jinja2 files in ``prompts/``, shipped inside the package and overridable
with a user directory (``--prompts-dir``; only the files it holds are overridden).

A user-supplied template is untrusted input. It renders in jinja2's immutable sandbox (no
escapes, no mutation of lists or dicts), and on top of that every way we know of to build
something huge from a few characters of template is refused *before* the big object exists:

* values: no string, list, number or output may pass ``MAX_RENDER_CHARS`` characters (plus
  the size of the values the program passes in), measured by ``_weight``, which counts a
  shared item at every place it appears (``[s] * 1000`` weighs a thousand ``s``);
* work: loop steps, calls, filters, tests and includes count against ``MAX_STEPS``; the
  characters built count against ``BUILD_FACTOR`` times the size limit (memory), and the
  characters looked through (compared, hashed, passed to a method or filter) against
  ``SCAN_FACTOR`` times it (time), so nested loops and branching recursion stop within seconds;
* recursion ends in Python's RecursionError, and every failure of any kind becomes a
  one-line ``PromptError`` naming the template.

A few things are removed or refused outright: the ``lipsum`` global, ``sum`` with a
non-number start (adding lists is quadratic), ``tojson`` indents above ``MAX_JSON_INDENT``,
%-format keys with nested parentheses, and str/bytes/int method arguments above the limit.

Not bounded: the cost of one operation on values within the limit (a sort of a 60,000-item
list), and Python's per-step overhead: the slowest case found, 50,000 recursive macro
calls, takes about a second. ``str()`` of a value may briefly take up to ~10 times its
weight (escapes in a repr) before the output limit refuses it.
"""

from __future__ import annotations

import functools
import os
import re
import types
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.loaders import split_template_path
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from .errors import PromptError

#: The largest value (string, list, number as text) or rendered output, in characters, on
#: top of the size of the values passed to ``render``.
MAX_RENDER_CHARS = 200_000
#: Characters a render may build in all (values, output), as a multiple of the size limit.
BUILD_FACTOR = 10
#: Characters a render may look through in all (comparisons, hashing, method and filter
#: inputs), as a multiple of the size limit.
SCAN_FACTOR = 100
#: Loop steps, calls (macros included), filters, tests and includes per render.
MAX_STEPS = 50_000
#: The largest integer a template may compute (about 30,000 decimal digits).
MAX_INT_BITS = 100_000
#: The largest template file read.
MAX_TEMPLATE_BYTES = 1_000_000
#: The largest ``tojson(indent=...)``: indentation multiplies with nesting.
MAX_JSON_INDENT = 8
#: The longest error message detail kept (the first line of the underlying error).
MAX_DETAIL_CHARS = 240


def builtin_dir() -> Path:
    """The shipped templates: inside the installed package, or the repository's prompts/."""
    packaged = Path(str(resources.files("longwriter"))) / "prompts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "prompts"


class Prompts:
    """Renders named templates (``section`` -> ``section.j2``) into message text."""

    def __init__(self, override_dir: str | Path | None = None) -> None:
        search = [str(builtin_dir())]
        folder = None if override_dir is None else _readable_folder(override_dir)
        if folder is not None:
            search.insert(0, str(folder))
        self.env = _GuardedEnvironment(
            loader=_Loader(search),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        if folder is not None:
            self._compile_all(folder)

    def _compile_all(self, folder: Path) -> None:
        """Compile every override now, so a broken one is refused before a model loads."""
        for path in sorted(folder.glob("*.j2")):
            try:
                self.env.get_template(path.name)
            except Exception as err:  # noqa: BLE001 - any failure is the user's template
                raise _prompt_error(path.name, err) from None

    def localized(self, name: str, language: str) -> str:
        """``name.<lang>`` (``section.zh``) when that template exists and is not shadowed by a
        user's own ``name`` from an earlier folder; else ``name``. A Chinese document's prompts
        are then written in Chinese, not English prompts asking for Chinese."""
        candidate = f"{name}.{language.lower().replace('_', '-').split('-')[0]}"
        loader = self.env.loader
        try:
            local = os.path.dirname(loader._find(f"{candidate}.j2"))
        except jinja2.TemplateNotFound:
            return name
        try:
            plain = os.path.dirname(loader._find(f"{name}.j2"))
        except jinja2.TemplateNotFound:
            return candidate
        order = list(loader.searchpath)
        return candidate if order.index(local) <= order.index(plain) else name

    def render(self, name: str, **values) -> str:
        """Render ``name``.j2 with ``values``; any template problem is a one-line PromptError."""
        file = f"{name}.j2"
        limit = MAX_RENDER_CHARS + _weight(values, 1 << 62)
        token = _BUDGET.set(_Budget(limit, BUILD_FACTOR * limit, SCAN_FACTOR * limit, MAX_STEPS))
        try:
            parts, size = [], 0
            # Streamed, so that a template printing too much stops as soon as it passes the limit.
            for chunk in self.env.get_template(file).generate(**values):
                size += len(chunk)
                _need(size, "the rendered text")
                parts.append(chunk)
            return "".join(parts).strip()
        except Exception as err:  # noqa: BLE001 - RecursionError and MemoryError included
            raise _prompt_error(file, err) from None
        finally:
            _BUDGET.reset(token)


def _readable_folder(override_dir: str | Path) -> Path:
    """The prompts directory, or a PromptError if it is missing or unreadable."""
    folder = Path(override_dir)
    if not folder.is_dir():
        raise PromptError(f"prompts directory '{folder}' does not exist or is not a directory")
    try:
        list(folder.iterdir())
    except OSError as err:
        raise PromptError(f"prompts directory '{folder}' cannot be read ({err.strerror})") from None
    return folder


# --- turning any failure into one line -------------------------------------------------


def _prompt_error(template: str, err: BaseException) -> PromptError:
    """A one-line PromptError naming the template, and the line when it is known."""
    name = _printable(template)
    if type(err) is jinja2.TemplateNotFound and err.name == template:
        return PromptError(f"prompt template '{name}' not found")
    where = ""
    location = _location(err)
    if location:
        file, line = location
        where = f" line {line}" if file == template else f" (in '{_printable(file)}' line {line})"
    return PromptError(_clip(f"prompt template '{name}'{where}: {_describe(err)}", 299))


def _location(err: BaseException) -> tuple[str, int] | None:
    """(template file, line) where ``err`` happened, from jinja's rewritten traceback."""
    if isinstance(err, jinja2.TemplateSyntaxError) and err.lineno:
        return Path(err.filename or err.name or "?").name, err.lineno
    found, tb = None, err.__traceback__
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:  # jinja's frame for a template line
            found = Path(tb.tb_frame.f_code.co_filename).name, tb.tb_lineno
        tb = tb.tb_next
    return found


def _describe(err: BaseException) -> str:
    """What went wrong, in words, without the traceback."""
    if isinstance(err, RecursionError):
        return "templates nest too deeply (a template or macro that includes, extends or calls itself?)"
    if isinstance(err, MemoryError):
        return "out of memory"
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})"
    if type(err) is jinja2.TemplateNotFound:  # an OSError too
        return f"template '{_printable(str(err.name))}' not found"
    if isinstance(err, OSError) and not isinstance(err, jinja2.TemplateError):
        return f"cannot be read ({err.strerror or err})"
    try:
        text = str(err)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error
        text = ""
    if isinstance(err, jinja2.TemplateError):
        return _clip(text, MAX_DETAIL_CHARS) or type(err).__name__
    return _clip(f"{type(err).__name__}: {text}", MAX_DETAIL_CHARS)


def _clip(text: str, most: int) -> str:
    """The first non-empty line of ``text``, cut to ``most`` characters."""
    line = _printable(next((s.strip() for s in text.splitlines() if s.strip()), ""))
    return line if len(line) <= most else line[: most - 3] + "..."


def _printable(text: str) -> str:
    """``text`` with control characters (a newline in a file name, an escape) as '?'."""
    return _CONTROL.sub("?", text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- the per-render limits ---------------------------------------------------------------


@dataclass
class _Budget:
    limit: int  # the largest value or output, in characters
    built: int  # characters left to build (memory)
    scanned: int  # characters left to look through (time)
    steps: int  # loop steps, calls, filters, tests and includes left


# Set by render() for the duration of one render; None while compiling (constant folding
# calls filters then), where only the size limit applies.
_BUDGET: ContextVar[_Budget | None] = ContextVar("longwriter_prompt_budget", default=None)


def _limit() -> int:
    budget = _BUDGET.get()
    return budget.limit if budget is not None else MAX_RENDER_CHARS


def _spend(steps: int = 0, built: int = 0, scanned: int = 0) -> None:
    """Spend part of the render's budget; refuse once any part of it is gone."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps -= steps
    budget.built -= built
    budget.scanned -= scanned
    if budget.steps < 0:
        raise SecurityError(f"refused: more than {MAX_STEPS:,} loop steps, calls or includes")
    if budget.built < 0 or budget.scanned < 0:
        what = "builds" if budget.built < 0 else "looks through"
        raise SecurityError(f"refused: the template {what} too much text in all")


def _amount(n: int) -> str:
    """``n`` for a message: numbers too long to print in full are given as a power of two."""
    return f"{n:,}" if n.bit_length() < 64 else f"about 2**{n.bit_length()}"


def _need(size: int, what: str) -> None:
    """Refuse ``what`` if it would be more than the limit's characters."""
    limit = _limit()
    if size > limit:
        raise SecurityError(f"refused: {what} would be {_amount(size)} characters (limit {limit:,})")


def _need_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise SecurityError(f"refused: a number of {_amount(bits)} bits (limit {MAX_INT_BITS:,})")


_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
_CONTAINERS = (list, tuple, set, frozenset, range, type({}.keys()), type({}.values()), type({}.items()))


def _size(value) -> int:
    """len() of a built-in sized value, 0 for anything else (never runs template code)."""
    return len(value) if isinstance(value, _SIZED) else 0


def _weight(obj, limit: int) -> int:
    """About how many characters ``obj`` takes printed: a shared item counts at every place
    it appears, and each item one more per nesting level (pretty-printers indent). Stops
    counting once past ``limit``, so it costs at most about ``limit`` steps."""
    kind = type(obj)
    if kind is str:  # the common cases, without the walk
        return len(obj)
    if kind is int:
        return obj.bit_length() // 3
    if obj is None or kind is bool or kind is float:
        return 0
    total, stack = 0, [(obj, 0)]
    while stack and total <= limit:
        item, depth = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3
        elif isinstance(item, Namespace):
            stack.append((object.__getattribute__(item, "_Namespace__attrs"), depth))
        elif isinstance(item, (dict, *_CONTAINERS)):
            # Brackets, separators and indentation, counted before expanding, so that a big
            # container referenced many times cannot make this walk long.
            total += (len(item) + 1) * (depth + 2)
            if total <= limit:
                children = (x for pair in item.items() for x in pair) if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return total


def _built(result):
    """Refuse a result over the limit (it already exists, but it goes no further) and charge it."""
    if isinstance(result, range):  # lazy (and at most jinja's MAX_RANGE long): counted where used
        return result
    weight = _weight(result, _limit())
    if weight:
        _need(weight, "a value")
        _spend(built=weight)
    return result


def _scan(value, what: str = "a value looked through"):
    """Refuse a value too large to compare, hash or pass on, and charge looking through it.
    (A list literal can nest shared references: ``[a, a]`` ten times over weighs 1024 ``a``,
    and comparing or hashing it takes that long.)"""
    weight = _weight(value, _limit())
    if weight:
        _need(weight, what)
        _spend(scanned=weight)
    return value


def _scan_all(values, what: str) -> None:
    for value in values:
        _scan(value, what)


def _materialize(items: Iterator) -> list:
    """What a lazy iterator (a generator, a lazy filter's result) yields, as a list that stops
    growing as soon as it passes the limit."""
    limit, total, out = _limit(), 0, []
    for item in items:
        total += 2 + _weight(item, limit)
        _need(total, "the items of an iterator")
        out.append(item)
    _spend(built=total)
    return out


# --- sizes of results, estimated before building them -----------------------------------

# A mapping key with nested parentheses defeats the simple pattern below; it is refused.
_PRINTF_NESTED_KEY = re.compile(r"%\([^)]*\(")
_PRINTF_SPEC = re.compile(r"%%|%(?:\([^()]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _printf_size(fmt: str, args) -> int:
    """An upper bound of ``len(fmt % args)``: widths and precisions may each add characters."""
    if _PRINTF_NESTED_KEY.search(fmt):
        raise SecurityError("refused: a %-format key with nested parentheses")
    limit = _limit()
    size = len(fmt) + _weight(args, limit)
    star = sum(abs(a) for a in args if isinstance(a, int)) if isinstance(args, tuple) else 0
    for match in _PRINTF_SPEC.finditer(fmt):
        for number in match.groups():
            if number == "*":
                size += star
            elif number:
                size += int(number) if len(number) < 10 else limit + 1
    return size


def _replace_size(text, old, new, count=-1) -> int:
    hits = text.count(old)
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _expandtabs_size(text, tabsize=8) -> int:
    return len(text) + text.count("\t" if isinstance(text, str) else b"\t") * max(tabsize, 0)


def _join_size(sep, items) -> int:
    return len(sep) * max(len(items) - 1, 0) + _weight(items, _limit())


def _translate_size(text, table, *_) -> int:
    longest = max((_size(v) for v in table.values()), default=1) if isinstance(table, dict) else 1
    return len(text) * max(longest, 1)


# str / bytes methods whose result can be far larger than their inputs, besides the ones
# taking a width or count (center, ljust, rjust, zfill...), which every int argument bounds.
_METHOD_SIZES = {"replace": _replace_size, "expandtabs": _expandtabs_size, "join": _join_size,
                 "translate": _translate_size}


def _check_method(func, args: tuple, kwargs: dict) -> tuple:
    """Refuse a str, bytes or int method asked for a huge result; returns the arguments to
    call it with (join's iterable made a bounded list, so it is not consumed twice)."""
    owner, name = getattr(func, "__self__", None), getattr(func, "__name__", "")
    if not isinstance(owner, (str, bytes, bytearray, int)) or name in ("format", "format_map"):
        return args
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and abs(value) > _limit():
            raise SecurityError(f"refused: {name}() with an argument of {_amount(abs(value))}")
    if name == "join" and args and not isinstance(args[0], _SIZED):
        args = (_materialize(iter(args[0])), *args[1:])
    if name in _METHOD_SIZES:
        _need(_METHOD_SIZES[name](owner, *args, **kwargs), f"{name}()")
    return args


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _indent_size(s, width=4, first=False, blank=False) -> int:
    step = len(width) if isinstance(width, str) else width
    return len(_text(s)) + (_text(s).count("\n") + 1) * step


def _wordwrap_size(s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True) -> int:
    text = _text(s)
    lines = len(text) // max(width, 1) + len(text.split()) + 1
    return len(text) + lines * len(_text(wrapstring or "\n"))


def _urlize_size(value, trim_url_limit=None, nofollow=False, target=None, rel=None, extra_schemes=None) -> int:
    text = _text(value)  # each word may become a link: <a href="url" rel=".." target="..">url</a>
    return 3 * len(text) + len(text.split()) * (len(_text(target or "")) + len(_text(rel or "")) + 60)


def _sum_size(iterable, attribute=None, start=0) -> int:
    if not isinstance(start, (int, float)):  # sum() of lists copies the total at every step
        raise SecurityError("refused: sum() with a start that is not a number")
    return 0


def _tojson_size(value, indent=None) -> int:
    step = len(indent) if isinstance(indent, str) else (indent or 0)
    if step > MAX_JSON_INDENT:
        raise SecurityError(f"refused: tojson indent above {MAX_JSON_INDENT}")
    return _weight(value, _limit()) * (1 + step)


def _batch_size(value, count, fill_with=None) -> int:
    return _weight(value, _limit()) + abs(count) * (2 + _weight(fill_with, _limit()))


# Filters whose result can be far larger than their inputs; each gets the filter's own
# arguments (after the context or environment jinja passes) and returns an upper bound.
_FILTER_SIZES = {
    "center": lambda value, width=80: len(_text(value)) + abs(width),
    "indent": _indent_size,
    "format": lambda value, *args, **kwargs: _printf_size(_text(value), kwargs or args),
    "join": lambda value, d="", attribute=None: _join_size(_text(d), value),
    "replace": lambda s, old, new, count=None: _replace_size(_text(s), _text(old), _text(new), count),
    "wordwrap": _wordwrap_size,
    "urlize": _urlize_size,
    "sum": _sum_size,
    "tojson": _tojson_size,
    "batch": _batch_size,
    "slice": _batch_size,
    "round": lambda value, precision=0, method="common": abs(precision),  # 10**precision is computed
}


def _guard_filter(name: str, func):
    """``func`` (a jinja filter) refusing oversized inputs and results, and charged for its work."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) else 0  # jinja passes context or env first
    estimate = _FILTER_SIZES.get(name)

    @functools.wraps(func)  # keeps jinja_pass_arg
    def guarded(*args, **kwargs):
        args = list(args)
        if len(args) > skip and isinstance(args[skip], Iterator) and not isinstance(args[skip], LoopContext):
            args[skip] = _materialize(args[skip])
        _spend(1)
        _scan_all((*args[skip:], *kwargs.values()), f"the input of filter '{name}'")
        if estimate is not None:
            _need(estimate(*args[skip:], **kwargs), f"filter '{name}'")
        return _built(func(*args, **kwargs))

    return guarded


def _guard_test(func):
    """``func`` (a jinja test) charged for what it looks through (``in``, ``==``)."""

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        _spend(1)
        _scan_all((*args, *kwargs.values()), "a tested value")
        return func(*args, **kwargs)

    return guarded


# --- constructs the sandbox has no hook for, routed through charged filters -------------


def _steps(iterable):
    """A for loop's items, each counted as a step."""
    for item in iterable:
        _spend(1)
        yield item


def _compared(value):
    """A comparison operand or dict key: ``==``, ``in`` and hashing look all through it."""
    return _scan(value, "a compared value")


def _sliced(value):
    """A slice: a new copy."""
    _spend(built=_size(value))
    return value


def _concat(parts: list) -> str:
    """The ``~`` operator, refusing a result over the limit before building it. (Plain
    str() of each part, as jinja does without autoescape; prompts never autoescape.)"""
    _need(sum(_weight(p, _limit()) for p in parts), "joining with ~")
    result = "".join(map(str, parts))
    _spend(built=len(result))
    return result


_INTERNAL_FILTERS = {"longwriter_steps": _steps, "longwriter_compared": _compared, "longwriter_sliced": _sliced,
                     "longwriter_concat": _concat}


class _Route(NodeTransformer):
    """Rewrites a template's tree: loops, ``~``, comparisons, dict keys and slices go through
    the filters above (jinja compiles them to plain Python, out of the sandbox's reach)."""

    def __init__(self, environment) -> None:
        self.environment = environment

    def _wrap(self, node: nodes.Expr, name: str) -> nodes.Filter:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        return wrapped.set_environment(self.environment)

    def visit_For(self, node: nodes.For) -> nodes.For:
        node = self.generic_visit(node)
        node.iter = self._wrap(node.iter, "longwriter_steps")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        node = self.generic_visit(node)
        return self._wrap(nodes.List(node.nodes, lineno=node.lineno), "longwriter_concat")

    def visit_Compare(self, node: nodes.Compare) -> nodes.Compare:
        node = self.generic_visit(node)
        node.expr = self._wrap(node.expr, "longwriter_compared")
        for operand in node.ops:
            operand.expr = self._wrap(operand.expr, "longwriter_compared")
        return node

    def visit_Pair(self, node: nodes.Pair) -> nodes.Pair:
        node = self.generic_visit(node)
        node.key = self._wrap(node.key, "longwriter_compared")  # a dict literal hashes its keys
        return node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Expr:
        node = self.generic_visit(node)
        return self._wrap(node, "longwriter_sliced") if isinstance(node.arg, nodes.Slice) else node


class _RoutingCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame=None) -> None:
        _Route(self.environment).visit(node)
        super().visit_Template(node, frame)


# --- the environment -------------------------------------------------------------------


_DIGITS = re.compile(r"\d+")


class _BoundedFormatter(SandboxedFormatter):
    """str.format in the sandbox, refusing huge widths and charging every field. (Its
    arguments were already weighed by ``call``, so ``!r`` cannot expand a shared tree.)"""

    def format_field(self, value, format_spec: str):
        numbers = _DIGITS.findall(format_spec)  # width, precision (and a digit fill: harmless)
        widest = max((int(n) if len(n) < 10 else _limit() + 1 for n in numbers), default=0)
        size = _weight(value, _limit()) + widest
        _need(size, "a format field")
        _spend(built=size)
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


def _finalize(value):
    """Every ``{{ ... }}`` value, checked before it is turned into text."""
    return _built(value)


class _GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with size limits on operators, calls, filters, formats and
    output, and a work budget on loops, calls and includes (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _RoutingCodeGenerator

    def __init__(self, **options) -> None:
        super().__init__(finalize=_finalize, **options)
        self.globals.pop("lipsum", None)  # lipsum(n, min, max) makes n * max words; no prompt needs it
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters.update(_INTERNAL_FILTERS)
        self.tests = {name: _guard_test(f) for name, f in self.tests.items()}

    def call_binop(self, context, operator: str, left, right):
        """``*``, ``**``, ``%`` and ``+``, refused when the result would be too large."""
        if operator == "**":
            self._check_pow(left, right)
        elif operator == "*":
            self._check_mul(left, right)
        elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
            _need(_weight(left, _limit()) + _weight(right, _limit()), "adding two values")
        elif operator == "%" and isinstance(left, (str, bytes)):
            fmt = left if isinstance(left, str) else left.decode("latin-1")
            _need(_printf_size(fmt, right), "a %-format")
        return _built(super().call_binop(context, operator, left, right))

    @staticmethod
    def _check_pow(base, exponent) -> None:
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
            _need_bits(base.bit_length() * exponent)

    @staticmethod
    def _check_mul(left, right) -> None:
        if isinstance(left, int) and not isinstance(right, int):
            left, right = right, left
        if isinstance(left, int) and isinstance(right, int):
            _need_bits(left.bit_length() + right.bit_length())
        elif isinstance(left, _SIZED) and isinstance(right, int) and right > 0 and len(left):
            _need(_weight(left, _limit()) * right, f"repeating a {type(left).__name__} {_amount(right)} times")

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja's names, see SandboxedEnvironment.call
        """A call from a template: str/bytes/int methods asked for a huge result are refused,
        and every call (macros included) is a step, charged for what it is given."""
        _spend(1)
        _scan_all((getattr(__obj, "__self__", None), *args, *kwargs.values()), "a call's argument")
        args = _check_method(__obj, args, kwargs)
        return _built(super().call(__context, __obj, *args, **kwargs))

    def getitem(self, obj, argument):
        """``obj[argument]``; a tuple key is hashed all through, so it is charged first."""
        if isinstance(argument, (tuple, frozenset)):
            _scan(argument, "a key")
        return super().getitem(obj, argument)

    def wrap_str_format(self, value):
        """jinja's sandboxed ``str.format``/``format_map`` (as in SandboxedEnvironment), with
        the bounded formatter: jinja builds its own formatter here, with no hook to swap it."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
                "format", "format_map") or not isinstance(value.__self__, str):
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"
        formatter = (_BoundedEscapeFormatter(self, escape=fmt.escape) if isinstance(fmt, Markup)
                     else _BoundedFormatter(self))

        def wrapper(*args, **kwargs):
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                args, kwargs = (), args[0]
            return type(fmt)(formatter.vformat(fmt, args, kwargs))

        return functools.update_wrapper(wrapper, value)

    def concat(self, parts) -> str:
        """The output of a macro, block or ``{% set %}`` block, refused past the limit."""
        parts = list(parts)
        _need(sum(map(len, parts)), "the output of a macro or block")
        return "".join(parts)

    def get_template(self, name, parent=None, globals=None):
        """Charged: includes, imports and extends run through here, recursion included."""
        _spend(1)
        return super().get_template(name, parent, globals)

    def select_template(self, names, parent=None, globals=None):
        _spend(1)
        return super().select_template(names, parent, globals)


class _Loader(jinja2.FileSystemLoader):
    """Reads a template only if it is a regular file, and never more than MAX_TEMPLATE_BYTES
    (a directory, a FIFO or /dev/zero named ``x.j2`` is refused, not skipped or read)."""

    def get_source(self, environment, template: str):
        path = self._find(template)
        if not os.path.isfile(path):
            raise jinja2.TemplateError(f"'{template}' is not a regular file")
        with open(path, "rb") as file:
            data = file.read(MAX_TEMPLATE_BYTES + 1)
        if len(data) > MAX_TEMPLATE_BYTES:
            raise jinja2.TemplateError(f"'{template}' is larger than {MAX_TEMPLATE_BYTES:,} bytes")
        mtime = os.path.getmtime(path)
        return data.decode(self.encoding), os.path.normpath(path), lambda: _mtime(path) == mtime

    def _find(self, template: str) -> str:
        """The first search folder's entry of that name, whatever it is (the first wins)."""
        pieces = split_template_path(template)
        for folder in self.searchpath:
            path = os.path.join(folder, *pieces)
            if os.path.lexists(path):
                return path
        raise jinja2.TemplateNotFound(template)


def _mtime(path: str) -> float | None:
    try:
        return os.path.getmtime(path)
    except OSError:
        return None
