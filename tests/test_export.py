"""Export to HTML and DOCX, read back: the structure that comes out (headings, TOC, tables, code,
math, styles), not only that it ran. No model is loaded."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from longwriter.errors import InputError
from longwriter.export import FORMATS, parse_formats, to_docx, to_html

CODE = "# a comment line, must stay\ndef f(x):\n    return x * 2\n\n\treturn 'tab' < 3\n"

SAMPLE = f"""# Document title

## 1 Background

Prose paragraph with **bold**, *italic*, `inline code` and a citation [1].
<script>alert("x")</script> and [a link](https://example.org).

### 1.1 Sub section

- a bullet
- another
  - nested

1. first
2. second

| Name | Value |
| --- | --- |
| a | 1 |
| b & c | <2> |

```python
{CODE}```

$$
E = mc^2
$$

Inline math $a^2 + b^2$ too.

```mermaid
graph TD; A-->B;
```

#### 1.1.1 Deep

## References

1. notes.md, "Heading"
2. report.pdf, page 3
"""

CHINESE = """# 咖啡的历史

## 第一章 起源

咖啡起源于埃塞俄比亚，**很早**就被人们饮用[1]。

### 1.1 传播

- 也门的商人
- 威尼斯的港口

```python
# 中文注释
print("你好")
```

## 参考文献

1. 笔记.md，"起源"
"""


def soup(markdown: str, **kwargs) -> BeautifulSoup:
    return BeautifulSoup(to_html(markdown, **kwargs), "html.parser")


def read_docx(markdown: str, tmp_path, **kwargs):
    import docx

    path = tmp_path / "out.docx"
    path.write_bytes(to_docx(markdown, **kwargs))
    return docx.Document(str(path))


# ---------------------------------------------------------------------------------------------
# HTML


def test_html_is_a_standalone_page():
    page = to_html(SAMPLE, language="en")
    assert page.startswith("<!DOCTYPE html>")
    doc = BeautifulSoup(page, "html.parser")
    assert doc.html["lang"] == "en"
    assert doc.find("meta", charset="utf-8") is not None
    assert doc.title.string == "Document title"
    assert soup(SAMPLE, title="A <b> & c").title.string == "A <b> & c"  # escaped, read back
    assert "<b> &" not in to_html(SAMPLE, title="A <b> & c")
    assert doc.style is not None and "46em" in doc.style.string


def test_html_headings_in_order_with_levels_and_ids():
    doc = soup(SAMPLE)
    heads = [(h.name, h.get_text()) for h in doc.find_all(["h1", "h2", "h3", "h4", "h5", "h6"])]
    assert heads == [("h1", "Document title"), ("h2", "1 Background"), ("h3", "1.1 Sub section"),
                     ("h4", "1.1.1 Deep"), ("h2", "References")]
    ids = [h["id"] for h in doc.find_all(["h1", "h2", "h3", "h4"])]
    assert len(set(ids)) == len(ids) and all(ids)


def test_toc_follows_the_title_and_links_every_subheading():
    doc = soup(SAMPLE)
    nav = doc.find("nav", class_="toc")
    assert nav.find_previous_sibling().name == "h1"  # right after the title
    assert nav.find_next_sibling().name == "h2"
    links = nav.find_all("a")
    assert [a.get_text() for a in links] == ["1 Background", "1.1 Sub section", "1.1.1 Deep", "References"]
    for a in links:
        target = doc.find(id=a["href"][1:])
        assert target is not None and target.get_text() == a.get_text()
    # Nesting follows the levels: 1.1 under 1 Background, 1.1.1 under 1.1, References at the top.
    top = nav.find("ul").find_all("li", recursive=False)
    assert [li.a.get_text() for li in top] == ["1 Background", "References"]
    assert top[0].ul.li.a.get_text() == "1.1 Sub section"
    assert top[0].ul.li.ul.li.a.get_text() == "1.1.1 Deep"


def test_toc_survives_odd_heading_levels_and_punctuation_headings():
    doc = soup("# T\n\n#### deep first\n\n## ???\n\n## ???\n\n### x\n")
    nav = doc.find("nav", class_="toc")
    hrefs = [a["href"] for a in nav.find_all("a")]
    assert len(hrefs) == 4 and all(h != "#" for h in hrefs) and len(set(hrefs)) == 4
    assert all(doc.find(id=h[1:]) is not None for h in hrefs)
    assert all(li.find("a", recursive=False) for li in nav.find_all("li"))  # no empty items
    top = nav.find("ul").find_all("li", recursive=False)
    assert [li.a.get_text() for li in top] == ["deep first", "???", "???"]
    assert top[2].ul.li.a.get_text() == "x"  # ### nests under the ## before it


def test_html_table_cells():
    table = soup(SAMPLE).find("table")
    assert [th.get_text() for th in table.find_all("th")] == ["Name", "Value"]
    rows = [[td.get_text() for td in tr.find_all("td")] for tr in table.tbody.find_all("tr")]
    assert rows == [["a", "1"], ["b & c", "<2>"]]


def test_html_code_block_is_kept_exactly():
    doc = soup(SAMPLE)
    code = doc.find("code", class_="language-python")
    assert code.parent.name == "pre"
    assert code.get_text() == CODE
    mermaid = doc.find("code", class_="language-mermaid")
    assert mermaid.get_text() == "graph TD; A-->B;\n"


def test_html_math_kept_as_tex():
    doc = soup(SAMPLE)
    block = doc.find(class_="math block")
    assert block.get_text() == "E = mc^2"
    assert soup("$$\na < b\n\\\\ c\n$$\n").find(class_="math block").get_text() == "a < b\n\\\\ c"
    inline = doc.find(class_="math inline")
    assert inline.get_text() == "a^2 + b^2"
    assert "$" not in inline.parent.get_text()


def test_html_raw_html_and_external_resources_do_not_pass():
    md = SAMPLE + '\n<link rel="stylesheet" href="http://cdn.example/x.css">\n\n![pic](https://cdn.example/p.png)\n'
    doc = soup(md)
    assert doc.find("script") is None
    assert doc.find("link") is None
    assert 'alert("x")' in doc.get_text() and "<script>" in doc.get_text()  # shown as text
    assert not doc.find_all(src=True)  # nothing is loaded: the remote image became a link
    assert doc.find("a", href="https://cdn.example/p.png").get_text() == "pic"
    assert "http" not in str(doc.head)


def test_html_chinese_document():
    doc = soup(CHINESE, language="zh")
    assert doc.html["lang"] == "zh"
    assert doc.title.string == "咖啡的历史"
    heads = [(h.name, h.get_text()) for h in doc.find_all(["h1", "h2", "h3"])]
    assert heads == [("h1", "咖啡的历史"), ("h2", "第一章 起源"), ("h3", "1.1 传播"), ("h2", "参考文献")]
    for a in doc.find("nav", class_="toc").find_all("a"):
        assert doc.find(id=a["href"][1:]).get_text() == a.get_text()
    assert "咖啡起源于埃塞俄比亚，很早就被人们饮用[1]。" in doc.get_text()
    assert doc.find("code", class_="language-python").get_text() == '# 中文注释\nprint("你好")\n'


# ---------------------------------------------------------------------------------------------
# DOCX


def test_docx_paragraph_styles_and_texts_in_order(tmp_path):
    doc = read_docx(SAMPLE, tmp_path)
    got = [(p.style.name, p.text) for p in doc.paragraphs]
    assert got == [
        ("Title", "Document title"),
        ("Heading 1", "1 Background"),
        ("Normal", 'Prose paragraph with bold, italic, inline code and a citation [1]. '
                   '<script>alert("x")</script> and a link (https://example.org).'),
        ("Heading 2", "1.1 Sub section"),
        ("List Bullet", "a bullet"),
        ("List Bullet", "another"),
        ("List Bullet 2", "nested"),
        ("List Number", "first"),
        ("List Number", "second"),
        ("Code", "# a comment line, must stay"),
        ("Code", "def f(x):"),
        ("Code", "    return x * 2"),
        ("Code", ""),
        ("Code", "\treturn 'tab' < 3"),
        ("Code", "E = mc^2"),
        ("Normal", "Inline math a^2 + b^2 too."),
        ("Code", "graph TD; A-->B;"),
        ("Heading 3", "1.1.1 Deep"),
        ("Heading 1", "References"),
        ("List Number", 'notes.md, "Heading"'),
        ("List Number", "report.pdf, page 3"),
    ]
    assert doc.core_properties.title == "Document title"


def test_docx_runs_bold_italic_code_math(tmp_path):
    doc = read_docx(SAMPLE, tmp_path)
    prose = doc.paragraphs[2]
    assert [r.text for r in prose.runs if r.bold] == ["bold"]
    assert [r.text for r in prose.runs if r.italic] == ["italic"]
    assert [r.text for r in prose.runs if r.font.name == "Courier New"] == ["inline code"]
    math = doc.paragraphs[15]
    assert [r.text for r in math.runs if r.font.name == "Courier New"] == ["a^2 + b^2"]


def test_docx_table(tmp_path):
    doc = read_docx(SAMPLE, tmp_path)
    assert len(doc.tables) == 1
    table = doc.tables[0]
    assert table.style.name == "Table Grid"
    assert [[c.text for c in row.cells] for row in table.rows] == [["Name", "Value"], ["a", "1"], ["b & c", "<2>"]]
    assert all(r.bold for c in table.rows[0].cells for r in c.paragraphs[0].runs)
    assert not any(r.bold for c in table.rows[1].cells for r in c.paragraphs[0].runs)


def test_docx_code_style_and_east_asian_fonts(tmp_path):
    from docx.oxml.ns import qn

    doc = read_docx(SAMPLE, tmp_path)
    code = doc.styles["Code"]
    assert code.base_style.name == "Normal"
    assert code.font.name == "Courier New" and code.font.size.pt == 9
    assert code.element.rPr.rFonts.get(qn("w:eastAsia"))
    normal = doc.styles["Normal"].element.rPr.rFonts
    assert normal.get(qn("w:eastAsia")) == "SimSun"
    heading = doc.styles["Heading 1"].element.rPr.rFonts
    assert heading.get(qn("w:eastAsia")) and heading.get(qn("w:eastAsiaTheme")) is None


def test_docx_each_ordered_list_restarts_at_its_start(tmp_path):
    doc = read_docx(SAMPLE + "\n## More\n\n3. three\n4. four\n", tmp_path)
    numbering = doc.part.numbering_part.element

    def num_of(p):
        return p._p.pPr.numPr.numId.val

    numbered = [p for p in doc.paragraphs if p.style.name == "List Number"]
    ids = [num_of(p) for p in numbered]
    assert ids[0] == ids[1] != ids[2] == ids[3] != ids[4] == ids[5] and ids[0] != ids[4]
    starts = [numbering.num_having_numId(i).lvlOverride_lst[0].startOverride.val for i in ids[::2]]
    assert starts == [1, 1, 3]


def test_docx_chinese_document(tmp_path):
    doc = read_docx(CHINESE, tmp_path)
    got = [(p.style.name, p.text) for p in doc.paragraphs]
    assert got == [
        ("Title", "咖啡的历史"),
        ("Heading 1", "第一章 起源"),
        ("Normal", "咖啡起源于埃塞俄比亚，很早就被人们饮用[1]。"),
        ("Heading 2", "1.1 传播"),
        ("List Bullet", "也门的商人"),
        ("List Bullet", "威尼斯的港口"),
        ("Code", "# 中文注释"),
        ("Code", 'print("你好")'),
        ("Heading 1", "参考文献"),
        ("List Number", '笔记.md，"起源"'),
    ]
    assert doc.core_properties.title == "咖啡的历史"
    assert [r.text for r in doc.paragraphs[2].runs if r.bold] == ["很早"]


def test_docx_title_argument_and_other_blocks(tmp_path):
    md = "## Only a chapter\n\n> quoted *words*\n\n---\n\n1. one\n\n   more of one\n\n   - inner\n"
    doc = read_docx(md, tmp_path, title="Given title")
    assert doc.core_properties.title == "Given title"
    got = [(p.style.name, p.text) for p in doc.paragraphs]
    assert got == [("Heading 1", "Only a chapter"), ("Quote", "quoted words"), ("Normal", ""),
                   ("List Number", "one"), ("List Continue", "more of one"), ("List Bullet 2", "inner")]
    assert [r.text for r in doc.paragraphs[1].runs if r.italic] == ["words"]


# ---------------------------------------------------------------------------------------------
# Damaged and empty input


@pytest.mark.parametrize("md", ["", "   \n\n", "# Only a title\n"])
def test_empty_documents_do_not_crash(md, tmp_path):
    doc = soup(md)
    assert doc.title.string == ("Only a title" if "#" in md else "Document")
    assert doc.find("nav") is None
    read_docx(md, tmp_path)


def test_unclosed_code_fence_keeps_the_rest_as_code(tmp_path):
    md = "# T\n\n## A\n\nText.\n\n```python\nx = 1\n# cut off here"
    assert soup(md).find("code", class_="language-python").get_text() == "x = 1\n# cut off here"
    doc = read_docx(md, tmp_path)
    assert [(p.style.name, p.text) for p in doc.paragraphs][-2:] == [("Code", "x = 1"), ("Code", "# cut off here")]


def test_unclosed_math_and_table_without_body(tmp_path):
    md = "# T\n\n$$\nE = mc^2\n\n| a | b |\n| - | - |\n"
    page = soup(md)
    assert page.find("p").get_text() == "$$\nE = mc^2"  # an unclosed $$ is plain text
    assert [th.get_text() for th in page.find_all("th")] == ["a", "b"]
    doc = read_docx(md, tmp_path)
    assert [p.text for p in doc.paragraphs] == ["T", "$$ E = mc^2"]
    assert [[c.text for c in row.cells] for row in doc.tables[0].rows] == [["a", "b"]]


# ---------------------------------------------------------------------------------------------
# Formats


def test_parse_formats_good():
    assert FORMATS == ("md", "html", "docx")
    assert parse_formats("md,html,docx") == ("md", "html", "docx")
    assert parse_formats(" DOCX , md ,docx,Html ") == ("docx", "md", "html")
    assert parse_formats("html,") == ("html",)


@pytest.mark.parametrize("text, named", [("md,pdf", "'pdf'"), ("HTML, word", "'word'"),
                                         ("", "no export format"), (" , ", "no export format")])
def test_parse_formats_bad(text, named):
    with pytest.raises(InputError) as err:
        parse_formats(text)
    message = str(err.value)
    assert named in message and "md, html, docx" in message and "\n" not in message
