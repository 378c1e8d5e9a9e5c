"""Writing from the user's sources on the scripted model: the planner and each section see their
passages (bounded), citations that point to nothing are removed, the document renumbers
citations across sections and ends with a References list; bad source sets are one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from longwriter import citations
from longwriter.backends.fake import ScriptedBackend
from longwriter.cli import main
from longwriter.context import owed_words
from longwriter.length import count_words
from longwriter.outline import Outline, Section
from longwriter.pipeline import SECTION_SOURCE_TOKENS, expand, plan
from longwriter.writer import WriterSettings

from .conftest import smart_responder

CORPUS = Path(__file__).parent / "corpus"
CORPUS_TEXT = " ".join(" ".join(p.read_text(encoding="utf-8").split()) for p in CORPUS.glob("*.md"))


def test_resolve_splits_groups_and_drops_citations_of_nothing():
    assert citations.resolve("Bees swarm [1, 2]. Mites spread [3]. Honey [0] keeps [2].", 2) == \
        "Bees swarm [1][2]. Mites spread. Honey keeps [2]."
    assert citations.resolve("No sources [1].", 0) == "No sources."
    assert citations.resolve("In code, a[1] and m[2][3] stay.", 0) == "In code, a[1] and m[2][3] stay."


def test_number_renumbers_by_first_use_across_sections_and_merges_one_source():
    texts, refs = citations.number([("A [2] and [1].", ["x.md, Intro", "y.md, Mites"]),
                                    ("B [1] then [3].", ["y.md, Mites", "z.md"]),
                                    ("C cites nothing.", [])])
    assert texts == ["A [1] and [2].", "B [1] then .", "C cites nothing."]
    assert refs == ["y.md, Mites", "x.md, Intro"]
    assert citations.references(refs) == "## References\n\n1. y.md, Mites\n2. x.md, Intro\n"
    assert citations.references([]) == ""


def _citing(request) -> str:
    """A cooperative model that cites the first passage its prompt shows, and a passage that
    does not exist."""
    user = request.messages[-1].content
    if "Write about" in user and "Sources (" in user:
        return smart_responder(request).replace(".", " [1].", 1) + " Unsupported claim [7]."
    return smart_responder(request)


def _outline() -> Outline:
    return Outline(title="Notes", topic="Beekeeping and lighthouses", words=600, sections=[
        Section(id="mites", title="Varroa mites", brief="How beekeepers count and treat varroa mites.", words=300),
        Section(id="lens", title="The Fresnel lens", brief="Who designed the lighthouse lens and why.", words=300)])


def test_sections_cite_their_passages_and_the_document_ends_with_references(tmp_path):
    backend = ScriptedBackend(_citing)
    result = expand(_outline(), tmp_path / "run", backend=backend, settings=WriterSettings(check=False),
                    sources=[CORPUS])
    prompts = [r.messages[-1].content for r in backend.requests if "Write about" in r.messages[-1].content]
    assert "oxalic acid" in prompts[0] and "Fresnel" in prompts[1]  # each section its own passages
    assert all(backend.count_tokens(p.split("Sources (")[1]) < SECTION_SOURCE_TOKENS + 100 for p in prompts)
    document = result.document
    body, refs = document.split("## References")
    assert "[7]" not in document and re.findall(r"\[(\d+)\]", body) == ["1", "2"]
    entries = re.findall(r"^\d+\. (.+)$", refs, re.M)
    assert entries == [result.report.sections[0].sources[0], result.report.sections[1].sources[0]]
    assert entries[0].startswith("beekeeping.md, ") and "Varroa" in entries[0]
    assert (tmp_path / "run" / "sources-index").is_dir()
    # The References list counts, as the whole response does; each section's budget made room for it.
    assert result.report.produced_words == count_words(document)
    assert citations.body(document, "en").rstrip() == body.rstrip()
    owed = owed_words(_outline(), {s.id: s.sources for s in result.report.sections})
    refs_words = count_words(refs) + count_words("## References")
    assert sum(owed.values()) - sum(_outline().heading_words().values()) >= refs_words


def test_the_planner_sees_the_sources_headings_and_best_passages(tmp_path):
    backend = ScriptedBackend(smart_responder)
    plan("Keeping honey bees", words=600, backend=backend, sources=[CORPUS / "beekeeping.md"])
    lists = [r.messages[-1].content for r in backend.requests if r.prefill]
    assert all("- beekeeping.md: Beekeeping basics > Varroa mites" in p for p in lists)
    assert any("> " in p and "honey" in p.lower() for p in lists)


@pytest.mark.parametrize("command", ["draft", "plan"])
def test_a_source_set_with_nothing_usable_is_exit_5_in_one_line_and_leaves_nothing(tmp_path, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "image.txt").write_bytes(b"\x00\x01binary")
    out = ["--out", str(tmp_path / "run")] if command == "draft" else ["-o", str(tmp_path / "o.yaml")]
    result = CliRunner().invoke(main, [command, "--topic", "bees", "--sources", str(empty), *out])
    assert result.exit_code == 5, result.output
    assert "image.txt" in result.output and "binary" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "o.yaml").exists()


def test_a_resumed_run_reuses_the_index_and_shows_each_section_the_same_passages(tmp_path):
    first = expand(_outline(), tmp_path / "run", backend=ScriptedBackend(_citing), settings=WriterSettings(check=False),
                   sources=[CORPUS])
    state = json.loads((tmp_path / "run" / "report.json").read_text())
    (tmp_path / "run" / "sections" / "lens.md").unlink()  # one section to write again
    again = expand(_outline(), tmp_path / "run", backend=ScriptedBackend(_citing),
                   settings=WriterSettings(check=False), sources=[CORPUS])
    assert again.report.resumed_sections == 1
    assert [s.sources for s in again.report.sections] == [s["sources"] for s in state["sections"]]
    assert again.document == first.document


SUPPORTED = ("Beekeepers fight varroa by treating hives with oxalic or formic acid at the end of summer. "
             "A good colony may yield between twenty and forty kilos of extra honey.")
UNSUPPORTED = ("Bees were first domesticated in ancient Egypt around 2400 BC. "
               "Honey never spoils because of its low water content.")


def test_the_grounding_score_is_the_share_of_sentences_a_shown_passage_supports(checker):
    """Calibration sentences (README): paraphrases of the corpus score 0.57-0.77 against their
    passage, on-topic claims it does not make 0.33-0.558; min_support is 0.56."""
    from longwriter.checker import Checker, Thresholds
    from longwriter.sources.chunk import chunk
    from longwriter.sources.read import read_blocks

    passages = [p.text for p in chunk(read_blocks(CORPUS / "beekeeping.md"), "beekeeping.md")]
    args = dict(topic="Keeping honey bees", title="Mites and honey", brief="Varroa and harvests", budget=40,
                accepted={}, passages=passages)
    assert checker.score(SUPPORTED, **args).grounding == 1.0
    assert checker.score(UNSUPPORTED, **args).grounding == 0.0
    assert checker.score(SUPPORTED + " " + UNSUPPORTED, **args).grounding == 0.5
    assert checker.score(SUPPORTED, **{**args, "passages": []}).grounding is None
    strict = Checker(checker.english, checker.other, Thresholds(min_grounding=0.6))
    assert "ungrounded" in strict.score(SUPPORTED + " " + UNSUPPORTED, **args).problems
    assert "ungrounded" not in strict.score(SUPPORTED, **args).problems


def test_a_grounded_run_reports_each_sections_grounding(tmp_path, checker):
    result = expand(_outline(), tmp_path / "run", backend=ScriptedBackend(_citing), checker=checker,
                    settings=WriterSettings(max_attempts=1), sources=[CORPUS])
    assert all(s.scores.grounding is not None for s in result.report.sections)
    # `check` scores each section against the passages it was shown (kept with the section).
    out = CliRunner().invoke(main, ["check", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    mean = sum(s.scores.grounding for s in result.report.sections) / 2
    assert "grounded" in out.output and f"grounding {mean:.2f} on average" in out.output
    assert all(s.passages and len(s.passages) == len(s.sources) for s in result.report.sections)
    assert any(p in CORPUS_TEXT for s in result.report.sections for p in s.passages)


def test_supported_sentences_the_model_left_uncited_get_their_passages_citation(checker):
    """Attribution: each uncited sentence a shown passage supports gets that passage's [n];
    unsupported sentences and the model's own citations are left as they are."""
    from longwriter.sources.chunk import chunk
    from longwriter.sources.read import read_blocks

    passages = [p.text for p in chunk(read_blocks(CORPUS / "beekeeping.md"), "beekeeping.md")]
    mites = next(i for i, p in enumerate(passages, 1) if "oxalic" in p)
    text = SUPPORTED.split(". ")[0] + ".\n\n" + UNSUPPORTED + " Swarms leave in May [1]."
    out, attached = checker.attribute(text, passages)
    assert attached == 1
    assert out == text.replace("end of summer.", f"end of summer [{mites}].")
    assert checker.attribute(UNSUPPORTED, passages) == (UNSUPPORTED, 0)


def test_a_grounded_run_attaches_citations_and_counts_them(tmp_path):
    """A model that copies its passage's first sentence without citing it: the section cites
    the passage, the References list has it, the report counts the attached citation."""

    def copying(request):
        user = request.messages[-1].content
        if "Write about" in user and "Sources (" in user:
            shown = re.search(r"\[1\] ?(.+?[.!?])\s", user.split("Sources (")[1], re.S).group(1)
            return shown + " " + smart_responder(request)
        return smart_responder(request)

    result = expand(_outline(), tmp_path / "run", backend=ScriptedBackend(copying),
                    settings=WriterSettings(check=False), sources=[CORPUS])
    assert all(s.attributed >= 1 and "[1]" in s.text for s in result.report.sections)
    assert result.report.attributed_citations == sum(s.attributed for s in result.report.sections)
    assert "## References" in result.document


ZH_SUPPORTED = ["传说神农在品尝各种草药时发现茶可以解毒。", "陆羽在唐朝写了《茶经》，被后人尊称为茶圣。",
                "绿茶是不发酵的茶，龙井就是一种有名的绿茶。", "茶马古道上，马帮把四川和云南的茶叶运到西藏换取马匹。",
                "乌龙茶是半发酵茶，而红茶是全发酵茶。"]
ZH_UNSUPPORTED = ["日本的茶道在十六世纪由千利休发扬光大。", "英国人习惯在下午加牛奶饮用红茶。", "茶叶中含有的咖啡因能让人保持清醒。",
                  "宋代流行点茶和斗茶的风俗。", "普洱茶存放的时间越长，价格往往越高。"]


def test_chinese_grounding_uses_the_character_ngram_scale(checker):
    """Calibration sentences (README): paraphrases of tea.md reach 0.10-0.34 character-n-gram
    cosine with their passage, on-topic claims it does not make 0.015-0.077; min_ngram_support
    is 0.09 (MiniLM's 0.56 would find no Chinese sentence supported)."""
    from longwriter.sources.chunk import chunk
    from longwriter.sources.read import read_blocks

    passages = [p.text for p in chunk(read_blocks(CORPUS / "tea.md"), "tea.md")]
    args = dict(topic="中国茶文化", title="茶的历史", brief="茶的起源与传播", budget=100, accepted={}, passages=passages)
    assert checker.score("".join(ZH_SUPPORTED), **args).grounding == 1.0
    assert checker.score("".join(ZH_UNSUPPORTED), **args).grounding == 0.0
    out, attached = checker.attribute(ZH_SUPPORTED[0] + ZH_UNSUPPORTED[0], passages)
    assert attached == 1 and re.fullmatch(r"传说.+解毒\[\d\]。日本.+。", out)
