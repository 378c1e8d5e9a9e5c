"""Export: turn a finished ``document.md`` into a standalone HTML page or a Word .docx file.

Both formats are made from the same token stream, so they agree on what the Markdown means:

- markdown-it-py parses the Markdown. It is a CommonMark parser the project already has (rich
  depends on it), so exporting adds no parser of our own to get wrong on model output.
- mdit-py-plugins, from the same authors, adds ``$...$``/``$$...$$`` math (kept as TeX: users
  are offline, so no MathJax) and heading anchors (ids the table of contents links to).
- python-docx writes the .docx with Word's real styles (Title, Heading 1, List Bullet, ...),
  so the navigation pane, outline view and restyling work in Word and LibreOffice.

Raw HTML in the Markdown is never passed through: a ``<script>`` a model wrote is shown as
text. The HTML page loads nothing from outside (no CDN, no scripts, remote images become
links), because it is read offline.
"""

from __future__ import annotations

import html
import io
import re
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:  # only for annotations: importing these is deferred to the calls
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

FORMATS = ("md", "html", "docx")

# Word's built-in heading styles stop at Heading 9; Markdown stops at ######.
_MAX_WORD_HEADING = 9
_MONO = "Courier New"
# East-Asian fonts Word and LibreOffice ship or map: without one, Chinese falls back to
# whatever the viewer picks, sometimes boxes.
_CJK_BODY = "SimSun"
_CJK_HEADING = "SimHei"

_CSS = """
body { max-width: 46em; margin: 2em auto; padding: 0 1em; line-height: 1.6; color: #222;
  font-family: Georgia, "Times New Roman", "Noto Serif CJK SC", "Source Han Serif SC",
  "Songti SC", SimSun, "Noto Sans CJK SC", serif; }
h1, h2, h3, h4, h5, h6 { line-height: 1.25; margin: 1.4em 0 0.5em; }
code, pre, .math { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas,
  "Noto Sans Mono CJK SC", monospace; font-size: 0.9em; }
code, .math.inline { background: #f4f4f4; padding: 0.1em 0.25em; border-radius: 3px; }
pre { background: #f4f4f4; padding: 0.8em 1em; overflow-x: auto; border-radius: 4px;
  line-height: 1.4; }
pre code { background: none; padding: 0; font-size: 1em; }
.math.block { display: block; background: #f8f8f8; padding: 0.6em 1em; margin: 1em 0;
  white-space: pre-wrap; text-align: center; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #999; padding: 0.3em 0.7em; text-align: left; }
th { background: #eee; }
blockquote { margin: 1em 0; padding: 0 1em; border-left: 4px solid #ccc; color: #555; }
nav.toc { background: #fafafa; border: 1px solid #ddd; padding: 0.5em 1em; margin: 1em 0 2em; }
nav.toc ul { list-style: none; padding-left: 1.2em; margin: 0.2em 0; }
nav.toc > ul { padding-left: 0; }
a { color: #1a5fb4; }
"""


# ---------------------------------------------------------------------------------------------
# Shared parsing


def _slug(text: str) -> str:
    """GitHub-style slug (the plugin's own), never empty: a heading of only punctuation
    would otherwise get id="", which a table-of-contents link cannot point to."""
    from mdit_py_plugins.anchors.index import slugify

    return slugify(text) or "section"


def _parser() -> MarkdownIt:
    """The one Markdown dialect both exports read: CommonMark, raw HTML off, with tables,
    strikethrough, dollar math and heading ids."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.anchors import anchors_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.use(dollarmath_plugin).use(anchors_plugin, max_level=6, slug_func=_slug)
    return md


def _plain(inline: Token) -> str:
    """The visible text of an inline token (a heading's words without ** or ` marks)."""
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline", "math_inline", "math_inline_double"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts).strip()


def _headings(tokens: list[Token]) -> list[tuple[int, str, str]]:
    """(level, id, text) of every top-level heading, in document order."""
    out = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0:
            out.append((int(tok.tag[1]), str(tok.attrGet("id") or ""), _plain(tokens[i + 1])))
    return out


def _first_title(tokens: list[Token]) -> str:
    """The text of the first ``#`` heading, or "" when there is none."""
    return next((text for level, _, text in _headings(tokens) if level == 1), "")


# ---------------------------------------------------------------------------------------------
# HTML


def _toc(headings: list[tuple[int, str, str]]) -> str:
    """A nested list of links to the headings of level 2 and below. A jump (## then ####)
    nests one list deeper, not two, so no empty items appear."""
    out: list[str] = []
    stack: list[int] = []  # levels of the open <ul>s; each has an open <li> once it has items
    for level, ident, text in headings:
        while len(stack) > 1 and level < stack[-1]:
            out.append("</li></ul>")
            stack.pop()
        if not stack or level > stack[-1]:
            out.append("<ul>")
            stack.append(level)
        else:
            out.append("</li>")
            stack[-1] = min(stack[-1], level)  # a #### first, then ##: the outer list is ##
        out.append(f'<li><a href="#{html.escape(ident)}">{html.escape(text)}</a>')
    out.extend("</li></ul>" for _ in stack)
    return "".join(out)


def _render_image(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    """Images stay images when local; a remote one becomes a link to it, since the page must
    load nothing from the network (users are offline, and it would leak that they read it)."""
    src = str(tokens[idx].attrGet("src") or "")
    if re.match(r"(?i)^(https?:)?//", src):
        alt = html.escape(tokens[idx].content or src)
        return f'<a href="{html.escape(src)}">{alt}</a>'
    return self.image(tokens, idx, options, env)


def _render_math_block(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    """Block math without the newlines around its TeX: the element keeps line breaks (TeX
    written over several lines stays readable), and those two would show as blank lines."""
    return f'<div class="math block">{html.escape(tokens[idx].content.strip(chr(10)))}</div>\n'


def to_html(markdown: str, title: str | None = None, language: str = "en") -> str:
    """A complete, standalone HTML5 page for ``markdown``: embedded CSS, a table of contents
    after the title heading, math kept as TeX in ``.math`` elements, and no external resources.
    ``title`` defaults to the first ``#`` heading's text."""
    md = _parser()
    md.add_render_rule("image", _render_image)
    md.add_render_rule("math_block", _render_math_block)
    env: dict = {}
    tokens = md.parse(markdown, env)
    heads = _headings(tokens)
    toc_items = [h for h in heads if h[0] >= 2]
    toc = f'<nav class="toc">\n{_toc(toc_items)}\n</nav>\n' if toc_items else ""
    # The TOC goes right after the title <h1>: split the tokens at its heading_close.
    cut = next((i + 1 for i, t in enumerate(tokens)
                if t.type == "heading_close" and t.tag == "h1" and t.level == 0), 0)
    render = md.renderer.render
    body = render(tokens[:cut], md.options, env) + toc + render(tokens[cut:], md.options, env)
    return _page(title or _first_title(tokens) or "Document", language, body)


def _page(title: str, language: str, body: str) -> str:
    """The HTML5 shell around a rendered body."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{html.escape(language or "en")}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------------
# DOCX


def _east_asian(style: Any, font: str) -> None:
    """Give ``style`` an East-Asian font. python-docx's ``font.name`` sets only the Latin
    slots; Chinese text reads w:eastAsia, and a theme font there would override ours."""
    from docx.oxml.ns import qn

    rfonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    rfonts.set(qn("w:eastAsia"), font)
    rfonts.attrib.pop(qn("w:eastAsiaTheme"), None)


def _prepare_styles(doc: Any) -> None:
    """East-Asian fonts on the text and heading styles, and the "Code" paragraph style."""
    from docx.enum.style import WD_STYLE_TYPE
    from docx.shared import Pt

    _east_asian(doc.styles["Normal"], _CJK_BODY)
    for name in ["Title"] + [f"Heading {n}" for n in range(1, _MAX_WORD_HEADING + 1)]:
        _east_asian(doc.styles[name], _CJK_HEADING)
    if "Code" not in [s.name for s in doc.styles]:
        code = doc.styles.add_style("Code", WD_STYLE_TYPE.PARAGRAPH)
        code.base_style = doc.styles["Normal"]
        code.font.name, code.font.size = _MONO, Pt(9)
        # Code lines sit together like in an editor, with a gap only after the block.
        code.paragraph_format.space_before = code.paragraph_format.space_after = Pt(0)
        code.paragraph_format.line_spacing = 1.0
        _east_asian(code, _CJK_BODY)


def _restart_numbering(doc: Any, style_name: str, start: int) -> int:
    """A new numbering instance for one ordered list, starting at ``start``. Without it every
    "List Number" paragraph shares one counter, and the References list would go on from
    the last numbered list of the body (7, 8, ... instead of 1, 2, ...)."""
    from docx.oxml.ns import qn

    style_num = doc.styles[style_name].element.pPr.numPr.numId.val
    numbering = doc.part.numbering_part.element
    abstract = numbering.num_having_numId(style_num).abstractNumId.val
    num = numbering.add_num(abstract)
    override = num.add_lvlOverride(ilvl=0)
    override.add_startOverride(start)
    return int(num.get(qn("w:numId")))


def _add_runs(paragraph: Any, inline: Token, bold: bool = False) -> None:
    """The inline children of ``inline`` as runs of ``paragraph``: bold, italic, struck,
    monospace code and math; links as their text followed by the URL in parentheses."""
    marks = {"strong": 1 if bold else 0, "em": 0, "s": 0}
    href, shown = "", []  # the open link's target, and its text so far

    def run(text: str, mono: bool = False) -> None:
        shown.append(text)
        r = paragraph.add_run(text)
        r.bold, r.italic = bool(marks["strong"]) or None, bool(marks["em"]) or None
        r.font.strike = bool(marks["s"]) or None
        if mono:
            r.font.name = _MONO

    for child in inline.children or []:
        kind = child.type
        if kind.endswith(("_open", "_close")) and kind.rsplit("_", 1)[0] in marks:
            marks[kind.rsplit("_", 1)[0]] += 1 if kind.endswith("_open") else -1
        elif kind == "text":
            run(child.content)
        elif kind in ("code_inline", "math_inline", "math_inline_double"):
            run(child.content, mono=True)
        elif kind == "softbreak":
            run(" ")
        elif kind == "hardbreak":
            paragraph.add_run().add_break()
        elif kind == "link_open":
            href, shown = str(child.attrGet("href") or ""), []
        elif kind == "link_close" and href:
            # An autolink <https://x> already shows its URL; others get it after the text.
            if "".join(shown) not in (href, href.removeprefix("mailto:")):
                run(f" ({href})")
            href = ""
        elif kind == "image":
            run(f"{child.content} ({child.attrGet('src')})")


class _DocxWriter:
    """Walks the block tokens once, keeping the context a paragraph needs to pick its style:
    the open lists, whether the list item already has its numbered paragraph, blockquotes,
    and the table being collected."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.lists: list[tuple[str, int | None]] = []  # ("Bullet"|"Number", numId) per level
        self.item_started = False
        self.quotes = 0
        self.heading = -1  # Word heading level of the open heading, -1 when none
        self.table: list[list[tuple[Token, bool]]] | None = None
        self.in_header = False

    def write(self, tokens: list[Token]) -> None:
        for tok in tokens:
            handler = getattr(self, "_" + tok.type, None)
            if handler:
                handler(tok)

    def _heading_open(self, tok: Token) -> None:
        self.heading = min(int(tok.tag[1]) - 1, _MAX_WORD_HEADING)  # "#" -> 0, the Title

    def _inline(self, tok: Token) -> None:
        if self.table is not None:
            self.table[-1].append((tok, self.in_header))
        elif self.heading >= 0:
            _add_runs(self.doc.add_heading("", level=self.heading), tok)
            self.heading = -1
        else:
            _add_runs(self._paragraph(), tok)

    def _paragraph(self) -> Any:
        """A new body paragraph in the style its context calls for."""
        if not self.lists:
            return self.doc.add_paragraph(style="Quote" if self.quotes else None)
        depth = min(len(self.lists), 3)
        suffix = f" {depth}" if depth > 1 else ""
        if self.item_started:  # a second paragraph of the same item: indented, unnumbered
            return self.doc.add_paragraph(style="List Continue" + suffix)
        self.item_started = True
        kind, num_id = self.lists[-1]
        paragraph = self.doc.add_paragraph(style=f"List {kind}{suffix}")
        if num_id is not None:
            paragraph._p.get_or_add_pPr().get_or_add_numPr().get_or_add_numId().val = num_id
        return paragraph

    def _bullet_list_open(self, tok: Token) -> None:
        self.lists.append(("Bullet", None))

    def _ordered_list_open(self, tok: Token) -> None:
        depth = min(len(self.lists) + 1, 3)
        style = "List Number" + (f" {depth}" if depth > 1 else "")
        start = int(tok.attrGet("start") or 1)
        self.lists.append(("Number", _restart_numbering(self.doc, style, start)))

    def _bullet_list_close(self, tok: Token) -> None:
        self.lists.pop()
        self.item_started = True  # text after a nested list continues the outer item

    _ordered_list_close = _bullet_list_close

    def _list_item_open(self, tok: Token) -> None:
        self.item_started = False

    def _blockquote_open(self, tok: Token) -> None:
        self.quotes += 1

    def _blockquote_close(self, tok: Token) -> None:
        self.quotes -= 1

    def _code_lines(self, text: str) -> None:
        """One "Code" paragraph per line, each kept exactly (leading spaces, tabs, # lines)."""
        for line in (text[:-1] if text.endswith("\n") else text).split("\n"):
            self.doc.add_paragraph(line, style="Code")

    def _fence(self, tok: Token) -> None:
        self._code_lines(tok.content)

    _code_block = _fence

    def _math_block(self, tok: Token) -> None:
        self._code_lines(tok.content.strip("\n"))

    _math_block_label = _math_block

    def _hr(self, tok: Token) -> None:
        self.doc.add_paragraph()

    # Tables: cells are collected until table_close, when the row and column counts are known.
    def _table_open(self, tok: Token) -> None:
        self.table = []

    def _tr_open(self, tok: Token) -> None:
        assert self.table is not None
        self.table.append([])

    def _thead_open(self, tok: Token) -> None:
        self.in_header = True

    def _thead_close(self, tok: Token) -> None:
        self.in_header = False

    def _table_close(self, tok: Token) -> None:
        rows, self.table = self.table or [], None
        cols = max((len(r) for r in rows), default=0)
        if not rows or not cols:
            return
        table = self.doc.add_table(rows=len(rows), cols=cols)
        table.style = self.doc.styles["Table Grid"]
        for r, row in enumerate(rows):
            for c, (inline, header) in enumerate(row):
                _add_runs(table.cell(r, c).paragraphs[0], inline, bold=header)


def to_docx(markdown: str, title: str | None = None) -> bytes:
    """The bytes of a .docx for ``markdown``: ``#`` is the Title, ``##`` Heading 1 and so on,
    lists, tables ("Table Grid"), code and math in a "Code" style, blockquotes as "Quote".
    ``title`` (default: the first ``#`` heading) goes into the document properties."""
    import docx  # python-docx: imported here so `longwriter --help` stays fast

    tokens = _parser().parse(markdown)
    doc = docx.Document()
    _prepare_styles(doc)
    _DocxWriter(doc).write(tokens)
    doc.core_properties.title = title or _first_title(tokens)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Formats


def parse_formats(text: str) -> tuple[str, ...]:
    """The export formats named in ``text`` ("md, HTML,docx"): lower-cased, duplicates
    dropped, order kept. Raises InputError naming a bad entry, or for an empty list."""
    allowed = ", ".join(FORMATS)
    out: list[str] = []
    # Blank entries ("md,,html", a trailing comma) are slips, not requests: skip them.
    for entry in (e.strip().lower() for e in text.split(",") if e.strip()):
        if entry not in FORMATS:
            raise InputError(f"unknown export format {entry!r}: use one or more of {allowed}")
        if entry not in out:
            out.append(entry)
    if not out:
        raise InputError(f"no export format given: use one or more of {allowed}")
    return tuple(out)
