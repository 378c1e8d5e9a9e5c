"""The user's sources: reading every format (the tests make the PDF and DOCX from the committed
corpus), bad sources skipped in one line, structure-aware chunking, the cached index, and
hybrid retrieval measured by recall@3 on labelled queries (real MiniLM, no generation model)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from longwriter.errors import InputError
from longwriter.length import count_words
from longwriter.sources import SourceIndex
from longwriter.sources.chunk import CHUNK_WORDS, chunk
from longwriter.sources.read import MAX_SOURCE_BYTES, Block, collect, read_blocks
from longwriter.sources.retrieve import lexical_tokens

CORPUS = Path(__file__).parent / "corpus"


def make_pdf(text_file: Path, target: Path) -> Path:
    """A two-page PDF of a plain-text file's paragraphs (fpdf2, core font: Latin-1 text)."""
    from fpdf import FPDF

    paragraphs = [p for p in text_file.read_text().split("\n\n") if p.strip()]
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for half in (paragraphs[:3], paragraphs[3:]):
        pdf.add_page()
        for paragraph in half:
            pdf.multi_cell(0, 6, " ".join(paragraph.split()))
            pdf.ln(6)
    pdf.output(str(target))
    return target


def make_docx(markdown_file: Path, target: Path) -> Path:
    """A DOCX with real heading styles from a markdown file, plus a table."""
    import docx

    document = docx.Document()
    for line in markdown_file.read_text().splitlines():
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            document.add_heading(line.lstrip("# ").strip(), level=level)
        elif line.strip():
            document.add_paragraph(line.strip())
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Hive", "Honey (kg)"
    table.cell(1, 0).text, table.cell(1, 1).text = "Langstroth", "30"
    document.save(str(target))
    return target


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The committed corpus plus a PDF, a DOCX and a GB18030 copy of the Chinese file."""
    root = tmp_path_factory.mktemp("corpus")
    for name in ("beekeeping.md", "lighthouses.html", "tea.md"):
        shutil.copy(CORPUS / name, root / name)
    make_pdf(CORPUS / "volcanoes.txt", root / "volcanoes.pdf")
    make_docx(CORPUS / "beekeeping.md", root / "beekeeping-handout.docx")
    (root / "tea-gb18030.txt").write_bytes((CORPUS / "tea.md").read_text().encode("gb18030"))
    return root


def test_every_format_reads_into_blocks_under_their_headings(corpus):
    md = read_blocks(corpus / "beekeeping.md")
    assert ("Beekeeping basics", "Varroa mites") in {b.headings for b in md}
    html = read_blocks(corpus / "lighthouses.html")
    assert any(b.headings == ("Lighthouses", "The Fresnel lens") and "1822" in b.text for b in html)
    assert not any("script must never" in b.text or "font-family" in b.text for b in html)
    assert sum("Keepers trimmed" in b.text for b in html) == 1  # a list item is one block, read once
    pdf = read_blocks(corpus / "volcanoes.pdf")
    assert {b.page for b in pdf} == {1, 2} and any("Pompeii" in b.text for b in pdf)
    docx = read_blocks(corpus / "beekeeping-handout.docx")
    assert any(b.headings == ("Beekeeping basics", "Harvesting honey") and "extractor" in b.text for b in docx)
    assert any(b.text == "Hive | Honey (kg)" for b in docx)
    gb = read_blocks(corpus / "tea-gb18030.txt")
    assert any("陆羽写成《茶经》" in b.text for b in gb)


def test_bad_sources_are_skipped_with_one_line_each(tmp_path):
    from pypdf import PdfWriter

    good = tmp_path / "docs"
    good.mkdir()
    shutil.copy(CORPUS / "volcanoes.txt", good / "volcanoes.txt")
    (good / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt("secret")
    writer.write(good / "locked.pdf")
    (good / "broken.docx").write_bytes(b"PK not really a zip")
    with open(good / "huge.md", "wb") as f:
        f.truncate(MAX_SOURCE_BYTES + 1)  # sparse: no 50 MB written
    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nThis file lies outside the folder given.")
    (good / "escape.md").symlink_to(outside)
    os.mkfifo(good / "pipe.txt")
    lines = []
    index = SourceIndex.build([good, tmp_path / "missing"], tmp_path / "cache", _Counting(), lines.append)
    assert {p.source for p in index.passages} == {"volcanoes.txt"}
    assert len(lines) == 7 and all("\n" not in line and "Traceback" not in line for line in lines)
    for name, why in [("image.txt", "binary"), ("locked.pdf", "encrypted"), ("broken.docx", "cannot be read"),
                      ("huge.md", "50 MB limit"), ("escape.md", "leading out of"), ("pipe.txt", "not a regular"),
                      ("missing", "does not exist")]:
        assert any(name in line and why in line for line in lines), (name, lines)


def test_an_empty_source_set_is_an_input_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as info:
        SourceIndex.build([tmp_path / "empty"], tmp_path / "cache", _Counting(), lambda line: None)
    assert info.value.exit_code == 5


def test_passages_follow_structure_and_stay_within_size_in_english_and_chinese():
    long_en = " ".join(f"Sentence number {i} says one more thing about bees." for i in range(100))
    long_zh = "".join(f"第{i}句话讲述茶叶的又一个特点。" for i in range(120))
    blocks = [Block(("A",), "Short intro."), Block(("A",), long_en), Block(("B",), long_zh), Block(("B",), "尾声。")]
    passages = chunk(blocks, "x.md")
    assert all(count_words(p.text) <= CHUNK_WORDS[1] + CHUNK_WORDS[0] // 2 for p in passages)
    assert [p.headings for p in passages].index(["B"]) > 0  # no passage spans two sections
    assert all(len({tuple(p.headings)}) == 1 for p in passages)
    assert sum(count_words(p.text) for p in passages) == sum(count_words(b.text) for b in blocks)
    assert len([p for p in passages if p.headings == ["B"]]) >= 2  # the Chinese text was split too
    assert passages[0].label() == "x.md, A"


def test_lexical_tokens_are_words_and_cjk_bigrams():
    assert lexical_tokens("Fresnel's lens, 1822") == ["fresnel", "s", "lens", "1822"]
    assert lexical_tokens("陆羽写《茶经》") == ["陆羽", "羽写", "茶经"]
    assert lexical_tokens("茶") == ["茶"]


QUERIES = [  # (query, source file, a phrase of the passage that answers it)
    ("How do beekeepers treat varroa mites?", "beekeeping", "oxalic acid"),
    ("How much honey does a strong colony produce?", "beekeeping", "twenty to forty kilograms"),
    ("Who designed the lens that made lighthouse beams visible far away?", "lighthouses", "Augustin Fresnel"),
    ("When was the last staffed lighthouse in England automated?", "lighthouses", "1998"),
    ("What buried Pompeii and Herculaneum?", "volcanoes", "Vesuvius"),
    ("How do scientists predict volcanic eruptions?", "volcanoes", "sulphur dioxide"),
    ("陆羽写了哪一部关于茶的书？", "tea", "《茶经》"),
    ("乌龙茶属于哪一类茶？", "tea", "半发酵"),
    ("古代商人如何把茶叶运到西藏？", "tea", "马帮"),
]


def test_hybrid_retrieval_finds_the_right_passage_in_the_top_three(corpus, tmp_path, checker):
    index = SourceIndex.build([corpus], tmp_path / "cache", checker.english, lambda line: None)
    hits = []
    for query, subject, phrase in QUERIES:
        top = [p for p, _ in index.search(query, k=3)]
        assert top[0].source.startswith(subject), (query, [p.label() for p in top])
        hits.append(any(phrase in p.text for p in top))
    recall = sum(hits) / len(hits)
    print(f"recall@3 {recall:.2f} over {len(QUERIES)} labelled queries")
    assert recall == 1.0, [q for (q, _, _), hit in zip(QUERIES, hits) if not hit]


def test_a_prompt_is_shown_only_passages_of_its_subject(corpus, tmp_path, checker):
    """The passages a prompt gets (best) pass a cosine floor: a bee section gets bee passages
    only, a subject the sources do not cover gets none, and every labelled query keeps its
    answering passage."""
    index = SourceIndex.build([corpus], tmp_path / "cache", checker.english, lambda line: None)
    bees = index.best("Keeping honey bees: colonies, mites and the honey harvest", len, 10_000)
    assert bees and all(p.source.startswith("beekeeping") for p in bees)
    assert index.best("The rules of cricket and how a test match is scored", len, 10_000) == []
    for query, subject, phrase in QUERIES:
        assert any(phrase in p.text for p in index.best(query, len, 10_000)), query


class _Counting:
    """A tiny deterministic embedder that counts the texts it embeds."""

    name = "counting"

    def __init__(self) -> None:
        self.seen = 0

    def encode(self, texts):
        import numpy as np

        self.seen += len(texts)
        rows = np.array([[len(t) % 7 + 1, len(t) % 5 + 1, 1.0] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_index_is_cached_by_content_and_only_changed_files_are_read_again(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(CORPUS, folder)
    embedder = _Counting()
    first = SourceIndex.build([folder], tmp_path / "cache", embedder, lambda line: None)
    total = embedder.seen
    assert total == len(first.passages) > 4
    again = SourceIndex.build([folder], tmp_path / "cache", embedder, lambda line: None)
    assert embedder.seen == total and [p.text for p in again.passages] == [p.text for p in first.passages]
    (folder / "volcanoes.txt").write_text("Volcanoes.\n\nA new paragraph about calderas.")
    third = SourceIndex.build([folder], tmp_path / "cache", embedder, lambda line: None)
    changed = [p for p in third.passages if p.source == "volcanoes.txt"]
    assert embedder.seen == total + len(changed) and "calderas" in changed[0].text  # only the changed file
