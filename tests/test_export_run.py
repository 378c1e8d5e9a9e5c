"""Exports of a run: --format on expand/draft and `longwriter export`, read back; code and
tables a model writes reach document.md and the exports intact."""

import re

import docx
from bs4 import BeautifulSoup
from click.testing import CliRunner

from longwriter.backends.fake import ScriptedBackend
from longwriter.cli import main
from longwriter.outline import parse_outline
from longwriter.pipeline import expand, export_run
from longwriter.writer import WriterSettings

from .conftest import prose, smart_responder

CODE = "```python\n# map a key to its bucket\ndef bucket(key, n):\n    return hash(key) % n\n```"
TABLE = "| operation | cost |\n| --- | --- |\n| lookup | O(1) |"


def rich_responder(request):
    """Sections that hold code and a table, as a model following a tech-blog template would."""
    user = request.messages[-1].content
    m = re.search(r"Write about (\d+) words", user)
    if m and "fenced code" in user:
        words = int(m.group(1))
        return f"{prose(words // 2, 'a')}\n\n{CODE}\n\n{TABLE}\n\n{prose(words // 2, 'b')}"
    return smart_responder(request)


def outline():
    return parse_outline({"title": "Hash Tables", "topic": "Hash tables in Python", "words": 400, "sections": [
        {"id": "idea", "title": "The Idea", "brief": "what hashing is", "words": 1},
        {"id": "code", "title": "The Code", "brief": "an implementation", "words": 1,
         "contains": ["prose", "code", "table"]}]})


def test_code_and_tables_pass_the_writer_whole_and_every_format_reads_back(tmp_path):
    result = expand(outline(), tmp_path, backend=ScriptedBackend(rich_responder), settings=WriterSettings(check=False),
                    formats=("md", "html", "docx"))
    assert CODE in result.document and TABLE in result.document  # "# map a key…" is no heading to strip
    assert result.exports == [tmp_path / "document.html", tmp_path / "document.docx"]
    page = BeautifulSoup((tmp_path / "document.html").read_text(encoding="utf-8"), "html.parser")
    assert [h.get_text() for h in page.find_all(["h1", "h2"])] == ["Hash Tables", "1 The Idea", "2 The Code"]
    assert page.find("code", class_="language-python").get_text() == CODE.split("\n", 1)[1].rsplit("```", 1)[0]
    assert [td.get_text() for td in page.find_all("td")] == ["lookup", "O(1)"]
    word = docx.Document(str(tmp_path / "document.docx"))
    styled = [(p.style.name, p.text) for p in word.paragraphs if p.style.name.startswith(("Title", "Heading"))]
    assert styled == [("Title", "Hash Tables"), ("Heading 1", "1 The Idea"), ("Heading 1", "2 The Code")]
    assert [p.text for p in word.paragraphs if p.style.name == "Code"][:1] == ["# map a key to its bucket"]
    assert word.tables[0].cell(1, 0).text == "lookup"


def test_the_export_command_uses_the_edited_document_and_resumes_nothing(tmp_path):
    expand(outline(), tmp_path, backend=ScriptedBackend(smart_responder), settings=WriterSettings(check=False))
    assert not (tmp_path / "document.html").exists() and not (tmp_path / "sources-index").exists()
    document = tmp_path / "document.md"
    document.write_text(document.read_text(encoding="utf-8") + "\nAn editor's closing line.\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["export", str(tmp_path), "--to", "html,docx"])
    assert result.exit_code == 0, result.output
    assert "An editor's closing line." in (tmp_path / "document.html").read_text(encoding="utf-8")
    assert docx.Document(str(tmp_path / "document.docx")).paragraphs[-1].text == "An editor's closing line."
    again = export_run(tmp_path, ("html",))  # its own earlier export is replaced, not moved aside
    assert again == [tmp_path / "document.html"] and not list(tmp_path.glob("document.html.~*"))


def test_export_refuses_what_is_no_run_and_unknown_formats(tmp_path):
    bad = CliRunner().invoke(main, ["export", str(tmp_path), "--to", "html"])
    assert bad.exit_code == 6 and "not a longwriter run directory" in bad.output
    unknown = CliRunner().invoke(main, ["export", str(tmp_path), "--to", "pdf"])
    assert unknown.exit_code == 2 and "unknown export format 'pdf'" in unknown.output
    draft = CliRunner().invoke(main, ["draft", "--topic", "x", "--format", "md,odt"])
    assert draft.exit_code == 2 and "'odt'" in draft.output
