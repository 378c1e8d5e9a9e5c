"""End to end on the real embedded model (SmolLM2-135M-Instruct), through the CLI. The model
is loaded once per session (load_backend is memoised) and shared by these tests."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml
from click.testing import CliRunner

from longwriter.cli import main
from longwriter.outline import load_outline

pytestmark = pytest.mark.model


@pytest.fixture(scope="module", autouse=True)
def warm_model(real_backend):
    """Load (and on a fresh machine convert) the embedded model before the timed tests."""
    return real_backend


def invoke(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def headings(document: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"^(#{2,6}) [\d.]+ (.+)$", document, re.M)]


def test_draft_the_history_of_coffee(tmp_path):
    out = tmp_path / "coffee"
    invoke(["draft", "--topic", "The history of coffee", "--words", "1200", "--out", str(out)])
    outline = load_outline(out / "outline.yaml")
    document = (out / "document.md").read_text()
    assert len(outline.leaves()) >= 5
    assert headings(document) == [s.title for _, s in outline.walk()]
    report = json.loads((out / "report.json").read_text())
    assert report["length_score"] >= 75
    assert all(len(s["text"].split()) > 50 for s in report["sections"])
    assert len(list((out / "sections").glob("*.md"))) == len(outline.leaves())
    check = invoke(["check", str(out)])
    assert f"{len(outline.leaves())} sections scored" in check.output


def test_plan_edit_expand(tmp_path):
    path = tmp_path / "outline.yaml"
    invoke(["plan", "--topic", "Why bees matter to farming", "--words", "450", "-o", str(path)])
    data = yaml.safe_load(path.read_text())
    assert len(data["sections"]) >= 2
    data["sections"][0]["title"] = "Pollination basics"
    data["sections"][0]["brief"] = "How bees carry pollen between flowers of crops."
    data["sections"][-1]["words"] = data["sections"][-1]["words"] * 2  # a budget edit is rebalanced
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    invoke(["expand", str(path), "--out", str(tmp_path / "bees"), "--no-check"])
    document = (tmp_path / "bees" / "document.md").read_text()
    assert "Pollination basics" in headings(document)
    used = load_outline(tmp_path / "bees" / "outline.yaml")
    assert sum(s.words for s in used.leaves()) == 450
    assert used.sections[-1].words > used.sections[0].words


def test_chinese_run_every_section_is_chinese_without_meta_talk(tmp_path):
    """Chinese prompts, the Latin-letter penalty and the language check (the checker is on):
    every section of the 135M model's draft is in Chinese characters and has no meta-talk. Its
    Chinese is noise (README, limits), so the length is only checked for a floor."""
    from longwriter.language import language_share
    from longwriter.wrappers import MetaTalk

    invoke(["draft", "--topic", "写一篇关于茶文化的短文，约300字", "--out", str(tmp_path / "tea")])
    report = json.loads((tmp_path / "tea" / "report.json").read_text())
    assert report["required_words"] == 300
    outline = load_outline(tmp_path / "tea" / "outline.yaml")
    assert outline.language == "zh" and language_share(outline.title, "zh") == 1.0
    assert all(re.search(r"[\u4e00-\u9fff]", leaf.title) for leaf in outline.leaves())
    assert all(language_share(s["text"], "zh") >= 0.8 for s in report["sections"]), \
        [s["text"][:80] for s in report["sections"]]
    assert not any(MetaTalk().find(s["text"]) for s in report["sections"])
    assert report["produced_words"] >= 0.25 * 300


def test_draft_from_sources_cites_passages_that_exist_and_lists_them(tmp_path):
    """`draft --sources` on the embedded model: the sections were shown passages of the corpus,
    every citation in the text resolves to an entry of the References list, every entry is a
    corpus file and is cited, and `check` reports the grounding."""
    from pathlib import Path

    from longwriter import citations
    from longwriter.length import count_words

    corpus = Path(__file__).parent / "corpus"
    out = tmp_path / "bees"
    invoke(["draft", "--topic", "Keeping honey bees: colonies, varroa mites and the honey harvest", "--words", "400",
            "--sources", str(corpus / "beekeeping.md"), "--sources", str(corpus / "volcanoes.txt"), "--out", str(out)])
    document = (out / "document.md").read_text()
    report = json.loads((out / "report.json").read_text())
    assert all(s["passages"] and len(s["passages"]) == len(s["sources"]) for s in report["sections"])
    body = citations.body(document, "en")
    entries = re.findall(r"^\d+\. (.+)$", document[len(body):], re.M)
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
    assert entries, "no section cites or is supported by its passages"
    assert cited == set(range(1, len(entries) + 1))
    assert all(e.split(",")[0] in ("beekeeping.md", "volcanoes.txt") for e in entries)
    assert report["produced_words"] == count_words(document)  # the References list counts
    check = invoke(["check", str(out)])
    assert "grounding" in check.output


def _sections(out):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "sections").glob("*.md")}


def _wait_for_sections(out, n, proc, limit=400):
    deadline = time.time() + limit
    while time.time() < deadline and len(_sections(out)) < n and proc.poll() is None:
        time.sleep(0.5)


def test_ctrl_c_then_sigkill_then_resume(tmp_path):
    """A real draft is stopped with Ctrl-C (clean exit 130), resumed and SIGKILLed, then resumed
    to the end: finished sections are never regenerated and the document is whole."""
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "longwriter", "draft", "--topic", "The history of tea", "--words", "900",
            "--sections", "4", "--depth", "1", "--context", "serial", "--no-check", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_sections(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, stderr
    assert "stopped by the user" in stderr and "Traceback" not in stderr
    first = _sections(out)
    assert 1 <= len(first) < 4 and (out / "document.md").exists()

    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_sections(out, len(first) + 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _sections(out)
    assert len(finished) > len(first) or len(finished) == 4
    assert {k: finished[k] for k in first} == first

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    after = _sections(out)
    assert len(after) == 4
    assert {k: after[k] for k in finished} == finished  # not regenerated: same bytes, same mtime
    report = json.loads((out / "report.json").read_text())
    assert report["resumed_sections"] == len(finished)
    document = (out / "document.md").read_text()
    assert len(headings(document)) == 4
    assert all(s["text"].strip() for s in report["sections"])


def test_a_request_writes_the_same_text_alone_or_in_any_batch():
    """Per-row seeds and sampling options: a rewrite (other seed, other penalty, tokens to
    avoid) shares the batch without changing its batch-mates' text. In float32: in bfloat16
    the matrix kernels round a row differently with the batch's shape (README, Performance)."""
    from longwriter.backends import load_backend
    from longwriter.backends.base import ChatRequest, Message, Sampling

    real_backend = load_backend(None, dtype="float32")

    def ask(text, seed, penalty=1.15, avoid=""):
        return ChatRequest(messages=[Message(role="user", content=text)], avoid=avoid,
                           sampling=Sampling(max_new_tokens=40, min_new_tokens=40, seed=seed, repetition_penalty=penalty))

    mine = ask("Write about the history of coffee.", 5)
    mates = [ask(f"Write a story about topic number {i}, far from coffee.", i, 1.3, avoid="coffee tea") for i in range(5)]
    alone = real_backend.generate([mine])[0]
    batched = real_backend.generate(mates[:2] + [mine] + mates[2:])
    assert batched[2].text == alone.text and alone.completion_tokens == 40
    assert len({c.text for c in batched}) == len(batched)


def test_ctrl_c_while_planning_exits_130_and_leaves_nothing(tmp_path):
    """Ctrl-C during planning stops planning (no junk outline, no writing), and a second run on
    the same folder while the first holds it is refused at once, before it plans anything."""
    out = tmp_path / "parent" / "tea"
    args = [sys.executable, "-m", "longwriter", "draft", "--topic", "The history of tea", "--words", "3000",
            "--no-check", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "planning the outline" not in seen and proc.poll() is None:
        seen += proc.stderr.readline()
    second = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert second.returncode == 8 and "in use by another longwriter run" in second.stderr
    proc.send_signal(signal.SIGINT)
    stderr = seen + proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, stderr
    assert "while planning" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "parent").exists()  # nothing saved, no empty folder left behind


def test_batch_with_a_template_and_exports_on_the_embedded_model(tmp_path):
    """Two documents in one batch (one to the tech-blog template, one Chinese), a bad line that
    is refused, and HTML and DOCX exports read back: the headings follow the outline (the
    template's sections) in every format."""
    import docx
    from bs4 import BeautifulSoup

    from longwriter import templates

    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"topic": "Hash tables in Python", "words": 300, "template": "tech-blog", "name": "hash"}\n'
                    '{"topic": "Bees", "colour": "yellow"}\n'
                    '{"topic": "茶的历史", "words": 200, "name": "tea"}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["batch", str(jobs), "--out", str(tmp_path / "out"), "--no-check",
                                       "--format", "md,html,docx"])
    assert result.exit_code == 12, result.output  # the bad line: everything else is written
    summary = {s["line"]: s for s in json.loads((tmp_path / "out" / "batch.json").read_text())}
    assert [summary[n]["status"] for n in (1, 2, 3)] == ["done", "refused", "done"]
    assert summary[2]["error"] == "line 2: colour: unknown field"
    blog = templates.load("tech-blog", "en")
    for name in ("hash", "tea"):
        out = tmp_path / "out" / name
        outline = load_outline(out / "outline.yaml")
        document = (out / "document.md").read_text(encoding="utf-8")
        assert headings(document) == [s.title for _, s in outline.walk()]
        page = BeautifulSoup((out / "document.html").read_text(encoding="utf-8"), "html.parser")
        assert [h.get_text() for h in page.find_all("h2")] == [f"{k} {s.title}" for k, s in enumerate(outline.sections, 1)]
        word = docx.Document(str(out / "document.docx"))
        assert [p.text for p in word.paragraphs if p.style.name == "Heading 1"] == \
            [f"{k} {s.title}" for k, s in enumerate(outline.sections, 1)]
    hash_outline = load_outline(tmp_path / "out" / "hash" / "outline.yaml")
    assert [s.title for s in hash_outline.sections] == [s.title for s in blog.sections]
    assert load_outline(tmp_path / "out" / "tea" / "outline.yaml").language == "zh"
