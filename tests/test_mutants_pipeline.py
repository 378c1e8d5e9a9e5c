"""Pipeline entry points that mutation testing showed no fast test pinned down: plan() and draft()
passing every argument on (words, options, prompts, backend, control, policy, batch size, checker,
progress), target lengths, and rescore() (the `check` command) over partial and edited runs.
Scripted backend and a model-free checker only."""

from __future__ import annotations

import logging

import pytest

import longwriter.pipeline as pipeline
from longwriter.backends.embeddings import CharNgramEmbedder
from longwriter.checker import Checker
from longwriter.errors import Interrupted
from longwriter.outline import dump_outline, parse_outline
from longwriter.pipeline import DEFAULT_WORDS, RunControl, Silent, draft, expand, plan_request, rescore, target_words
from longwriter.store import STATE, section_name
from longwriter.writer import WriterSettings

from .conftest import TOPIC, make_outline

NO_CHECK = WriterSettings(check=False)


class Recorder(Silent):
    """Progress that keeps what the user would see."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.warnings: list[str] = []

    def stage(self, text: str) -> None:
        self.stages.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)


class SpyChecker(Checker):
    """A model-free checker (character n-grams) that records what it was asked to score."""

    def __init__(self) -> None:
        super().__init__(CharNgramEmbedder(), CharNgramEmbedder())
        self.calls: list[dict] = []

    def score(self, text, **kw):
        self.calls.append({**kw, "accepted": list(kw["accepted"])})
        return super().score(text, **kw)


@pytest.fixture
def custom_prompts(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "system.j2").write_text("CUSTOM SYSTEM for {{ audience }}")
    return folder


def _writing_batches(backend):
    return [b for b in backend.batches if any("Write about" in r.messages[-1].content for r in b)]


# ------------------------------------------------------------------ lengths and requests


def test_target_words_prefers_the_argument_then_the_topic_then_the_default():
    """target_words(): explicit words win over a length in the topic, which wins over the default."""
    assert target_words("a 5000-word history of coffee", 700) == 700
    assert target_words("a 5000-word history of coffee", None) == 5000
    assert target_words("coffee", None) == DEFAULT_WORDS


def test_plan_request_uses_the_target_length():
    """plan_request(): the words argument (or the topic's stated length) becomes the request's words."""
    assert plan_request("coffee", 2000).words == 2000
    assert plan_request("a 3000-word history of coffee").words == 3000


# ------------------------------------------------------------------ plan()


def test_plan_passes_words_options_prompts_and_backend_on(fake, custom_prompts):
    """plan(): words, planner options, the prompts folder and the given backend are all used."""
    outline = pipeline.plan(TOPIC, words=600, backend=fake, prompts_dir=custom_prompts, sections=2, depth=1)
    assert outline.words == 600
    assert len(outline.sections) == 2 and not any(s.children for s in outline.sections)
    assert fake.requests and all(r.messages[0].content == "CUSTOM SYSTEM for general readers" for r in fake.requests)


def test_plan_obeys_a_control_that_was_already_stopped(fake):
    """plan(): a stopped RunControl passed in stops planning before any request."""
    control = RunControl()
    control.stop()
    with pytest.raises(Interrupted):
        pipeline.plan(TOPIC, words=600, backend=fake, control=control)
    assert fake.requests == []


# ------------------------------------------------------------------ draft()


def test_draft_passes_words_options_prompts_and_concurrency_on(tmp_path, fake, custom_prompts):
    """draft(): words, plan options, the prompts folder and concurrency all reach planning and writing."""
    result = draft(TOPIC, tmp_path / "out", words=600, backend=fake, prompts_dir=custom_prompts,
                   plan_options={"sections": 2, "depth": 1}, settings=NO_CHECK, concurrency=1)
    assert result.outline.words == 600 and len(result.outline.sections) == 2
    assert all(r.messages[0].content == "CUSTOM SYSTEM for general readers" for r in fake.requests)
    writing = _writing_batches(fake)
    assert writing and all(len(b) == 1 for b in writing)


@pytest.mark.parametrize("policy, first_batch", [("serial", 1), ("chapter", 2)])
def test_draft_writes_with_the_requested_context_policy(tmp_path, fake, policy, first_batch):
    """draft(): 'serial' writes one section at a time; 'chapter' writes the two flat sections together."""
    draft(TOPIC, tmp_path / "out", words=600, backend=fake, plan_options={"sections": 2, "depth": 1},
          settings=NO_CHECK, policy=policy)
    assert len(_writing_batches(fake)[0]) == first_batch


def test_draft_uses_the_checker_it_is_given(tmp_path, fake, monkeypatch):
    """draft(): a checker passed in scores the sections; no other checker is loaded."""
    monkeypatch.setattr(pipeline, "make_checker", lambda *a, **k: pytest.fail("draft loaded its own checker"))
    spy = SpyChecker()
    result = draft(TOPIC, tmp_path / "out", words=600, backend=fake, plan_options={"sections": 2, "depth": 1},
                   checker=spy)
    assert len(spy.calls) >= 2
    assert all(s.scores is not None for s in result.report.sections)


def test_draft_reports_its_stages_and_warnings_to_the_progress(tmp_path, fake):
    """draft(): 'planning the outline', or 'using the outline in ...', and a damaged-state warning."""
    planned = Recorder()
    draft(TOPIC, tmp_path / "planned", words=600, backend=fake, plan_options={"sections": 2, "depth": 1},
          settings=NO_CHECK, progress=planned)
    assert "planning the outline" in planned.stages
    out = tmp_path / "out"
    out.mkdir()
    (out / "outline.yaml").write_text(dump_outline(make_outline(2, 1, 400)))
    given = Recorder()
    draft(TOPIC, out, backend=fake, settings=NO_CHECK, progress=given)
    assert f"using the outline in {out / 'outline.yaml'}" in given.stages
    assert "planning the outline" not in given.stages
    (out / STATE).write_text("{ not json")
    again = Recorder()
    draft(TOPIC, out, backend=fake, settings=NO_CHECK, progress=again)
    assert any("is damaged" in w for w in again.warnings)


def test_draft_tells_the_progress_which_model_it_loads(tmp_path, fake, monkeypatch):
    """draft(): loading a model by name is shown as a stage ('loading model NAME')."""
    monkeypatch.setattr(pipeline, "load_backend", lambda *a, **k: fake)
    progress = Recorder()
    draft(TOPIC, tmp_path / "out", words=600, model="some/model", plan_options={"sections": 2, "depth": 1},
          settings=NO_CHECK, progress=progress)
    assert "loading model some/model" in progress.stages


def test_silent_progress_sends_warnings_to_logging(caplog):
    """Silent.warn(): the API's default progress still logs warnings."""
    with caplog.at_level(logging.WARNING, logger="longwriter"):
        Silent().warn("a section was edited")
    assert "a section was edited" in caplog.text


# ------------------------------------------------------------------ rescore()


def test_rescore_scores_every_written_section_after_a_missing_one(tmp_path, fake):
    """rescore(): a missing section is skipped, the sections after it are still scored."""
    expand(make_outline(3, 1, 600), tmp_path, backend=fake, settings=NO_CHECK)
    (tmp_path / section_name("c1")).unlink()
    rows = rescore(tmp_path, checker=SpyChecker())
    assert [sid for sid, _, _ in rows] == ["c2", "c3"]


def test_rescore_scores_each_section_with_its_title_brief_and_the_sections_before_it(tmp_path, fake):
    """rescore(): title, brief, budget (less the headings before it, as the writer asked for)
    and earlier sections (same titles told apart by id) go to the checker."""
    outline = parse_outline({"title": "Coffee", "topic": TOPIC, "words": 600, "sections": [
        {"id": "a", "title": "Same", "brief": "coffee in Yemen", "words": 1},
        {"id": "b", "title": "Same", "brief": "coffee in Venice", "words": 1},
        {"id": "c", "title": "Other", "brief": "coffee in Java", "words": 1}]})
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    spy = SpyChecker()
    rows = rescore(tmp_path, checker=spy)
    assert [(sid, title) for sid, title, _ in rows] == [("a", "Same"), ("b", "Same"), ("c", "Other")]
    assert [(c["title"], c["brief"], c["budget"]) for c in spy.calls] == \
        [("Same", "coffee in Yemen", 200 - 1 - 1), ("Same", "coffee in Venice", 200 - 1),
         ("Other", "coffee in Java", 200 - 1)]  # "# Coffee", "## 1 Same" (numbers are not words), ...
    assert [c["accepted"] for c in spy.calls] == [[], ["Same"], ["Same", "Same (b)"]]


def test_rescore_reports_a_hand_edited_section_through_notify(tmp_path, fake):
    """rescore(): reading a run passes notify on, so an edited section is reported, not lost."""
    expand(make_outline(2, 1, 400), tmp_path, backend=fake, settings=NO_CHECK)
    path = tmp_path / section_name("c1")
    path.write_text(path.read_text() + " Edited by hand.")
    notes: list[str] = []
    rows = rescore(tmp_path, checker=SpyChecker(), notify=notes.append)
    assert len(rows) == 2
    assert any("was edited by hand" in n for n in notes)


# ------------------------------------------------------------------ a bug found on the way


def test_a_drafted_run_keeps_the_outline_it_planned(tmp_path, fake):
    """draft(): the planned outline is saved as outline.yaml, so `check` and a resume can use it."""
    out = tmp_path / "out"
    draft(TOPIC, out, words=600, backend=fake, plan_options={"sections": 2, "depth": 1}, settings=NO_CHECK)
    assert (out / "outline.yaml").is_file()
    assert len(rescore(out, checker=SpyChecker())) == 2
