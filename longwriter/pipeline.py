"""The stages joined up: plan -> expand (schedule, write, check, persist) -> assemble.
These functions are the Python API; the CLI is a thin layer over them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import networkx as nx
from pydantic import BaseModel, ConfigDict

from .backends import Backend, load_backend
from .checker import Checker, Scores, Thresholds, accept
from .context import ContextBuilder
from .graph import Policy, build_graph
from .length import length_score, parse_length
from .outline import Outline, load_outline
from .planner import PlanRequest, Planner, check_topic
from .prompts import Prompts
from .scheduler import BatchStats, Scheduler
from .store import RunDir
from .writer import SectionResult, SectionWriter, WriterSettings

DEFAULT_WORDS = 1200


class Progress(Protocol):
    """What the pipeline reports while it works (the console layer draws it)."""

    def stage(self, text: str) -> None: ...
    def start(self, total: int, done: int) -> None: ...
    def batch(self, stats: BatchStats) -> None: ...
    def section(self, result: SectionResult) -> None: ...


class Silent:
    """A progress sink that shows nothing (the API's default)."""

    def stage(self, text: str) -> None: ...
    def start(self, total: int, done: int) -> None: ...
    def batch(self, stats: BatchStats) -> None: ...
    def section(self, result: SectionResult) -> None: ...


class Report(BaseModel):
    """The per-run report (written as report.json)."""

    model: str
    policy: str
    required_words: int
    produced_words: int
    length_score: float
    seconds: float
    completion_tokens: int
    resumed_sections: int
    sections: list[SectionResult]


class DraftResult(BaseModel):
    """What :func:`expand` and :func:`draft` return."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    outline: Outline
    directory: Path
    document: str
    report: Report


def target_words(topic: str, words: int | None) -> int:
    """The length asked for: ``words``, else a length stated in the topic, else the default."""
    return words or parse_length(topic) or DEFAULT_WORDS


def plan(topic: str, *, words: int | None = None, backend: Backend | None = None, model: str | None = None,
         prompts_dir: str | Path | None = None, **options) -> Outline:
    """Plan an outline for ``topic`` with the model (options: audience, style, language,
    sections, depth, seed). Returns the validated outline; save it with ``dump_outline``."""
    topic = check_topic(topic)
    prompts = Prompts(prompts_dir)
    backend = backend or load_backend(model)
    return Planner(backend, prompts).plan(PlanRequest(topic=topic, words=target_words(topic, words), **options))


def make_checker(thresholds: Thresholds | None = None) -> Checker:
    """The standard checker: MiniLM embeddings for English, character n-grams otherwise."""
    from .backends.embeddings import CharNgramEmbedder, MiniLMEmbedder

    return Checker(MiniLMEmbedder(), CharNgramEmbedder(), thresholds)


def _stale(graph: nx.DiGraph, finished: dict[str, SectionResult]) -> set[str]:
    """Sections that must be (re)written: unfinished ones and everything downstream of them."""
    todo = {n for n in graph if n not in finished}
    for node in list(todo):
        todo |= nx.descendants(graph, node)
    return todo


def expand(outline: Outline | str | Path, out: str | Path, *, backend: Backend | None = None,
           model: str | None = None, settings: WriterSettings | None = None, policy: Policy = "chapter",
           batch_size: int | None = None, prompts_dir: str | Path | None = None,
           checker: Checker | None = None, progress: Progress | None = None,
           should_stop: Callable[[], bool] = lambda: False) -> DraftResult:
    """Write every section of ``outline`` into the directory ``out``, resuming what a previous
    run finished there. Returns the assembled document and the run report."""
    outline = load_outline(outline) if isinstance(outline, (str, Path)) else outline
    settings, progress = settings or WriterSettings(), progress or Silent()
    graph, prompts = build_graph(outline, policy), Prompts(prompts_dir)
    with RunDir(out) as run:
        run.save_outline(outline)
        finished = run.finished(outline)
        finished = {k: v for k, v in finished.items() if k not in _stale(graph, finished)}
        backend = backend or load_backend(model)
        backend.reset()
        if settings.check and checker is None:
            progress.stage("loading the checker's embedding model")
            checker = make_checker()
        return _write(outline, run, graph, backend, prompts, settings, checker, finished, policy, batch_size,
                      progress, should_stop)


def _write(outline, run, graph, backend, prompts, settings, checker, finished, policy, batch_size, progress,
           should_stop) -> DraftResult:
    contexts = ContextBuilder(outline, graph, backend.count_tokens)
    writer = SectionWriter(outline, contexts, prompts, backend.count_tokens, settings,
                           checker if settings.check else None)
    results: dict[str, SectionResult] = dict(finished)
    for sid, r in finished.items():
        writer.texts[sid], writer.summaries[sid] = r.text, r.summary
    order = {leaf.id: i for i, leaf in enumerate(outline.leaves())}

    def accept(result: SectionResult) -> None:
        writer.texts[result.id], writer.summaries[result.id] = result.text, result.summary
        results[result.id] = result
        run.save_section(order[result.id], result, {k: v for k, v in results.items() if k != result.id})
        progress.section(result)

    progress.start(len(order), len(finished))
    started = time.perf_counter()
    try:
        Scheduler(graph, backend, writer.task, accept, done=set(finished), batch_size=batch_size,
                  on_batch=progress.batch, should_stop=should_stop).run()
    finally:
        run.assemble(outline, results)  # even a stopped run leaves a readable partial document
    return _finish(outline, run, results, backend, policy, time.perf_counter() - started, len(finished))


def _finish(outline, run, results, backend, policy, seconds, resumed) -> DraftResult:
    ordered = [results[leaf.id] for leaf in outline.leaves()]
    document = (run.path / "document.md").read_text(encoding="utf-8")
    produced = sum(r.words for r in ordered)
    report = Report(model=backend.name, policy=policy, required_words=outline.words, produced_words=produced,
                    length_score=round(length_score(outline.words, produced), 1), seconds=round(seconds, 2),
                    completion_tokens=sum(r.completion_tokens for r in ordered), resumed_sections=resumed,
                    sections=ordered)
    run.save_json("report.json", report.model_dump(mode="json"))
    return DraftResult(outline=outline, directory=run.path, document=document, report=report)


def draft(topic: str, out: str | Path, *, words: int | None = None, backend: Backend | None = None,
          model: str | None = None, prompts_dir: str | Path | None = None, plan_options: dict | None = None,
          progress: Progress | None = None, **expand_options) -> DraftResult:
    """Plan and write a document about ``topic`` into ``out``. Re-running on the same directory
    reuses its outline and finished sections (resume)."""
    topic = check_topic(topic)
    progress = progress or Silent()
    backend = backend or load_backend(model)
    existing = Path(out) / "outline.yaml"
    if existing.is_file() and (Path(out) / "state.json").is_file():
        progress.stage(f"resuming from {existing}")
        outline = load_outline(existing)
    else:
        progress.stage("planning the outline")
        outline = plan(topic, words=words, backend=backend, prompts_dir=prompts_dir, **(plan_options or {}))
    return expand(outline, out, backend=backend, prompts_dir=prompts_dir, progress=progress, **expand_options)


def rescore(out: str | Path, *, checker: Checker | None = None) -> list[tuple[str, str, Scores]]:
    """Re-score a finished (or partial) run directory: (id, title, scores) per written section,
    each compared against the sections before it, as the writer's checker does."""
    run = RunDir(out)
    outline = load_outline(run.path / "outline.yaml")
    checker = checker or make_checker()
    finished = run.finished(outline)
    rows, accepted = [], {}
    for leaf in outline.leaves():
        if leaf.id not in finished:
            continue
        text = finished[leaf.id].text
        rows.append((leaf.id, leaf.title, checker.score(text, topic=outline.topic, title=leaf.title,
                                                        brief=leaf.brief, budget=leaf.words, accepted=accepted)))
        accept(accepted, leaf.title, leaf.id, text)
    return rows
