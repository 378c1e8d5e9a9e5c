"""Document templates: a house format fixes a document's skeleton. It names the top-level
sections with their briefs and budget shares, which of them the planner subdivides, what each
may contain besides prose (lists, tables, fenced code, formulas, mermaid diagrams), and the
tone and audience. The planner keeps the skeleton and asks the model only for the rest (the
document title, subsection titles, missing briefs).

Built-in templates ship in the package as ``templates/NAME.LANG.yaml``: ``tech-blog``,
``report`` and ``article``, in English and Chinese. A user's template is a YAML file of the
same shape (``--template FILE``), read with the outline's guards and validated into one-line
:class:`TemplateError` s."""

from __future__ import annotations

from pathlib import Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import OutlineError, TemplateError  # noqa: F401 - TemplateError is part of this API
from .outline import MAX_BRIEF_CHARS, MAX_SECTIONS, MAX_TITLE_CHARS, Element, read_yaml

BUILT_IN = Path(__file__).parent / "templates"
MAX_TEMPLATE_SECTIONS = 50  # top-level sections of a template (a skeleton, not an outline)


class TemplateSection(BaseModel):
    """One top-level section of a template."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    brief: str = Field("", max_length=MAX_BRIEF_CHARS)  # empty: the planner writes one
    share: int = Field(1, gt=0, le=1000)  # its part of the document's words, relative to the others
    subdivide: bool = False  # the planner splits it into subsections when its budget allows
    contains: list[Element] = Field(default_factory=lambda: ["prose"], min_length=1)


class Template(BaseModel):
    """A document skeleton (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=80)
    language: str = Field("en", pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
    audience: str = Field("", max_length=MAX_BRIEF_CHARS)  # empty: the user's or the default
    style: str = Field("", max_length=MAX_BRIEF_CHARS)  # the tone
    sections: list[TemplateSection] = Field(min_length=1, max_length=min(MAX_TEMPLATE_SECTIONS, MAX_SECTIONS))


def names() -> list[str]:
    """The built-in templates' names."""
    return sorted({p.name.split(".")[0] for p in BUILT_IN.glob("*.yaml")})


def load(name_or_path: str, language: str = "en") -> Template:
    """A built-in template by name, in ``language`` when it has that version (else English),
    or a user's template file. Every problem is one :class:`TemplateError` line."""
    if name_or_path in names():
        base = language.split("-")[0].split("_")[0].lower()
        path = BUILT_IN / f"{name_or_path}.{base}.yaml"
        return _read(path if path.is_file() else BUILT_IN / f"{name_or_path}.en.yaml")
    if not Path(name_or_path).suffix and not Path(name_or_path).exists():
        raise TemplateError(f"no template '{name_or_path[:80]}': use one of {', '.join(names())} or a YAML file")
    return _read(Path(name_or_path))


def _read(path: Path) -> Template:
    try:
        raw = read_yaml(path)
    except OutlineError as err:
        raise TemplateError(f"template {path}: {err}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"template {path}: must be a mapping with name and sections")
    try:
        return Template.model_validate(raw)
    except ValidationError as err:
        raise TemplateError(f"template {path}: {_one_line(err)}") from None


def _one_line(err: ValidationError) -> str:
    """The first problem as 'section 2, field 'share': what', and how many more there are."""
    first = err.errors()[0]
    loc, where = list(first["loc"]), []
    if len(loc) > 1 and loc[0] == "sections" and isinstance(loc[1], int):
        where, loc = [f"section {loc[1] + 1}"], loc[2:]
    where += [f"field '{part}'" for part in loc]
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        allowed = TemplateSection.model_fields if where[0].startswith("section ") else Template.model_fields
        message = f"unknown field (allowed: {', '.join(allowed)})"
    more = f" (and {len(err.errors()) - 1} more problems)" if len(err.errors()) > 1 else ""
    return f"{', '.join(where) or 'document'}: {message}{more}"


def source(name: str, language: str = "en") -> str:
    """A built-in template's YAML text, to copy and edit into a house template of one's own."""
    base = language.split("-")[0].split("_")[0].lower()
    path = BUILT_IN / f"{name}.{base}.yaml"
    return (path if path.is_file() else BUILT_IN / f"{name}.en.yaml").read_text(encoding="utf-8")
