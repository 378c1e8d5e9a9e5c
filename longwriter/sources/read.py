"""Reading the user's sources: which files a set of paths names, and each file's text as blocks
(a heading path, a paragraph, a page). Markdown and plain text (UTF-8, else GB18030), HTML
(BeautifulSoup), PDF (pypdf) and DOCX (python-docx). A file that cannot be used (unreadable,
binary, encrypted, over 50 MB, a symlink leading out of the given folder) is skipped with one
line; nothing in a source is executed or rendered as a template."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_SOURCE_BYTES = 50 * 1024 * 1024
SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")

Notify = Callable[[str], None]


class Unusable(Exception):
    """Why a source file was skipped (one line)."""


@dataclass(frozen=True)
class Block:
    """One paragraph of a source, under its heading path (outermost first), on its page."""

    headings: tuple[str, ...]
    text: str
    page: int | None = None


def collect(paths: list[str | Path], notify: Notify) -> list[tuple[Path, str]]:
    """(file, name to cite it by) for every usable source file the paths name, in a stable
    order; a file given by name is used whatever its suffix, a folder contributes the files
    with a known suffix. Each skipped path gets one line through ``notify``."""
    found: dict[Path, str] = {}
    for given in map(Path, paths):
        if not given.exists():
            notify(f"source '{given}': does not exist; skipped")
        elif given.is_dir():
            for path, name in _walk(given, notify):
                found.setdefault(path, name)
        elif _fits(given, notify):
            found.setdefault(given.resolve(), given.name)
    return sorted(found.items(), key=lambda item: item[1])


def _walk(folder: Path, notify: Notify) -> Iterator[tuple[Path, str]]:
    root = folder.resolve()
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in SUFFIXES or path.is_dir():
            continue
        real = path.resolve()
        if not real.is_relative_to(root):
            notify(f"source '{path}': a link leading out of '{folder}'; skipped")
        elif _fits(path, notify):
            yield real, str(path.relative_to(folder))


def _fits(path: Path, notify: Notify) -> bool:
    try:
        size = path.stat().st_size
    except OSError as err:
        notify(f"source '{path}': cannot be read ({err.strerror}); skipped")
        return False
    if not path.is_file():
        notify(f"source '{path}': not a regular file; skipped")
        return False
    if size > MAX_SOURCE_BYTES:
        notify(f"source '{path}': {size / 2**20:.0f} MB, over the {MAX_SOURCE_BYTES // 2**20} MB limit; skipped")
        return False
    return True


def read_blocks(path: Path) -> list[Block]:
    """The blocks of one file, by its suffix (plain text for any other). Raises
    :class:`Unusable` with a one-line reason."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            return _pdf(path)
        if suffix == ".docx":
            return _docx(path)
        text = decode(path.read_bytes())
    except Unusable:
        raise
    except Exception as err:  # noqa: BLE001 - any library's failure on a bad file is the file's
        raise Unusable(f"cannot be read ({_first_line(err)})") from None
    if suffix in (".html", ".htm"):
        return _html(text)
    return _markdown(text) if suffix in (".md", ".markdown") else _paragraphs(text, ())


def decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else GB18030; NUL bytes mean a binary file."""
    if b"\x00" in data[:8192]:
        raise Unusable("a binary file, not text")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Unusable("neither UTF-8 nor GB18030 text")


def _paragraphs(text: str, headings: tuple[str, ...], page: int | None = None) -> list[Block]:
    return [Block(headings, " ".join(p.split()), page) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _markdown(text: str) -> list[Block]:
    """Paragraphs under the heading path their '#' headings give (fenced code kept whole)."""
    blocks, path, lines = [], [], []
    for line in text.splitlines():
        m = _MD_HEADING.match(line)
        if not m:
            lines.append(line)
            continue
        blocks += _paragraphs("\n".join(lines), tuple(t for _, t in path))
        lines, level = [], len(m.group(1))
        path = [(lv, t) for lv, t in path if lv < level] + [(level, m.group(2).strip())]
    return blocks + _paragraphs("\n".join(lines), tuple(t for _, t in path))


def _html(text: str) -> list[Block]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for hidden in soup(["script", "style", "noscript", "template"]):
        hidden.decompose()
    blocks, path = [], []
    for el in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "td"]):
        if el.find_parent(["p", "li", "pre", "blockquote", "td"]):
            continue  # inside a block already taken whole
        words = " ".join(el.get_text(" ").split())
        if not words:
            continue
        if el.name[0] == "h":
            level = int(el.name[1])
            path = [(lv, t) for lv, t in path if lv < level] + [(level, words)]
        else:
            blocks.append(Block(tuple(t for _, t in path), words))
    return blocks


def _pdf(path: Path) -> list[Block]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise Unusable("an encrypted PDF")
    blocks = []
    for number, page in enumerate(reader.pages, 1):
        blocks += _paragraphs(page.extract_text() or "", (), number)
    return blocks


def _docx(path: Path) -> list[Block]:
    import docx

    document, blocks, path_ = docx.Document(str(path)), [], []
    for para in document.paragraphs:
        words, style = " ".join(para.text.split()), (para.style.name if para.style else "") or ""
        m = re.match(r"(Heading|Title)\s*(\d*)", style)
        if m and words:
            level = int(m.group(2) or 0) if m.group(1) == "Heading" else 0
            path_ = [(lv, t) for lv, t in path_ if lv < level] + [(level, words)]
        elif words:
            blocks.append(Block(tuple(t for _, t in path_), words))
    for table in document.tables:
        for row in table.rows:
            cells = " | ".join(" ".join(c.text.split()) for c in row.cells)
            if cells.strip(" |"):
                blocks.append(Block(tuple(t for _, t in path_), cells))
    return blocks


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]
