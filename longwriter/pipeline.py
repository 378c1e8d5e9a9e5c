"""The stages joined up: plan -> expand (schedule, write, check, persist) -> assemble.
These functions are the Python API; the CLI is a thin layer over them. Each has an async twin
(``aplan``, ``aexpand``, ``adraft``) for services that run their own event loop; the plain
functions run one.

Order matters for safety: the output directory is locked and checked first, then the model
is loaded, then the outline is planned (or reused), then sections are written. A run that
fails or is stopped before writing anything leaves no folder behind."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import networkx as nx
from pydantic import BaseModel, ConfigDict

from .backends import Backend, BatchStats, ModelSpec, load_backend, server_backend
from .backends.embedded import cache_root
from .checker import Checker, Scores, Thresholds, accept
from .context import ContextBuilder, net_words, owed_words
from .errors import Interrupted, OutputError
from .graph import Policy, build_graph
from .length import count_words, length_score, parse_length
from .outline import Outline, load_outline, same_topic
from .planner import PlanRequest, Planner, check_topic
from .prompts import Prompts
from .scheduler import Scheduler
from .files import read_regular
from .store import CACHES, DOCUMENT, MAX_FILE_BYTES, OUTLINE, REPORT, RunDir
from .writer import SectionResult, SectionWriter, WriterSettings

DEFAULT_WORDS = 1200
SOURCES_DIR = CACHES[0]  # the run directory's cache of the sources' passages and embeddings
PLAN_SOURCE_TOKENS = 400  # what the planner is shown of the sources (headings, best passages)
SECTION_SOURCE_TOKENS = 450  # the passages a section's prompt carries, whatever the sources' size
log = logging.getLogger("longwriter")


class Progress(Protocol):
    """What the pipeline reports while it works (the console layer draws it)."""

    def stage(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def start(self, total: int, done: int) -> None: ...
    def batch(self, stats: BatchStats) -> None: ...
    def section(self, result: SectionResult) -> None: ...


class Silent:
    """A progress sink that shows nothing (the API's default); warnings go to logging."""

    def stage(self, text: str) -> None: ...
    def warn(self, text: str) -> None:
        log.warning(text)
    def start(self, total: int, done: int) -> None: ...
    def batch(self, stats: BatchStats) -> None: ...
    def section(self, result: SectionResult) -> None: ...


class RunControl:
    """Stops a run from outside (a signal handler, another thread): the flag is checked
    between steps, and every backend attached to the run is cancelled at once."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._backends: list[Backend] = []

    def stop(self) -> None:
        self._stop.set()
        for backend in self._backends:
            backend.cancel()

    def attach(self, backend: Backend) -> None:
        self._backends.append(backend)
        if self.stopped:
            backend.cancel()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def check(self) -> None:
        """Raise :class:`Interrupted` if the run was asked to stop."""
        if self.stopped:
            raise Interrupted("stopped by the user; finished sections are saved")


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
    engine: dict = {}  # what the engine reports (servers: kind, missing controls, requests per replica)
    sampling: dict = {}  # the section sampling used (temperature, top_p: the user's, the model's or ours)
    problems: dict[str, int] = {}  # drafts the checker found each problem in (wrong_language, meta_talk, ...)
    wrapper_sections: int = 0  # sections whose drafts had wrapper text cut ("Here is...", sign-offs)
    attributed_citations: int = 0  # citations attached to supported sentences the model left uncited
    sections: list[SectionResult]

    @staticmethod
    def count_problems(sections: list[SectionResult]) -> dict[str, int]:
        """How many drafts (all attempts of all sections) had each problem."""
        counts: dict[str, int] = {}
        for scores in (s for section in sections for s in section.attempt_scores):
            for problem in scores.problems:
                counts[problem] = counts.get(problem, 0) + 1
        return counts


class DraftResult(BaseModel):
    """What :func:`expand` and :func:`draft` return."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    outline: Outline
    directory: Path
    document: str
    report: Report
    exports: list[Path] = []  # document.html, document.docx when asked for


@dataclass
class Job:
    """One run's state, handed from stage to stage instead of long parameter lists."""

    outline: Outline
    run: RunDir
    backend: Backend
    prompts: Prompts
    settings: WriterSettings
    policy: Policy
    concurrency: int | None
    checker: Checker | None
    progress: Progress
    control: RunControl
    sources: Any = None  # the user's sources (a sources.SourceIndex), or None
    formats: Sequence[str] = ("md",)  # document.md, plus these exports (html, docx)


def target_words(topic: str, words: int | None) -> int:
    """The length asked for: ``words``, else a length stated in the topic, else the default."""
    return words or parse_length(topic) or DEFAULT_WORDS


def plan_request(topic: str, words: int | None = None, **options) -> PlanRequest:
    """A validated planning request, its template included (refused with a one-line error
    before any model loads)."""
    topic = check_topic(topic)
    request = PlanRequest(topic=topic, words=target_words(topic, words), **options)
    request.load_template()
    return request


def start_backend(backend: Backend | None, model: str | ModelSpec | None, control: RunControl,
                  progress: Progress | None = None) -> Backend:
    """The backend for this run: given, or loaded now; cleared of an earlier run's cancel."""
    if backend is None:
        spec = model if isinstance(model, ModelSpec) else ModelSpec(name=model)
        progress = progress or Silent()
        progress.stage(f"asking {', '.join(spec.servers)}" if spec.servers else
                       f"loading model {spec.name or 'smollm2-135m-instruct (embedded)'}")
        backend = server_backend(spec) if spec.servers else load_backend(
            spec.name, device=spec.device, batch_size=spec.batch_size, trust_remote_code=spec.trust_remote_code,
            engine=spec.engine, dtype=spec.dtype)
        for note in backend.notes:
            progress.stage(note)
    backend.reset()
    control.attach(backend)
    control.check()
    return backend


def _sync(coroutine):
    """Run an API coroutine to completion from synchronous code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError("called inside a running event loop: await aplan/aexpand/adraft instead")


async def aplan(topic: str, *, words: int | None = None, backend: Backend | None = None,
                model: str | ModelSpec | None = None, prompts_dir: str | Path | None = None,
                control: RunControl | None = None, sources: Sequence[str | Path] = (),
                progress: Progress | None = None, **options) -> Outline:
    """Async twin of :func:`plan`."""
    request, prompts, control = plan_request(topic, words, **options), Prompts(prompts_dir), control or RunControl()
    progress = progress or Silent()
    index = index_sources(sources, cache_root() / "sources", progress)
    backend = start_backend(backend, model, control)
    try:
        return await Planner(backend, prompts).plan(request, planning_lines(index, request.topic, backend),
                                                    request.load_template())
    finally:
        await backend.aclose()


def index_sources(paths: Sequence[str | Path], folder: Path, progress: Progress):
    """The user's sources indexed in ``folder`` (cached by content), or None without any; a
    skipped file is one warning line, no usable file at all an InputError (exit 5)."""
    if not paths:
        return None
    from .backends.embeddings import minilm
    from .sources import SourceIndex

    progress.stage("reading the sources")
    return SourceIndex.build(list(paths), folder, minilm(), progress.warn)


def planning_lines(index, topic: str, backend: Backend) -> list[str]:
    """What the planner is shown of the sources (bounded), [] without sources."""
    return index.planning_lines(topic, backend.count_tokens, PLAN_SOURCE_TOKENS) if index else []


def section_passages(index, outline: Outline, count) -> dict[str, list]:
    """Each leaf's best passages for its topic, title and brief, within SECTION_SOURCE_TOKENS:
    chosen once before writing, so resuming shows a section the same passages."""
    if not index:
        return {}
    return {leaf.id: index.best(f"{outline.topic}. {leaf.title}. {leaf.brief}", count, SECTION_SOURCE_TOKENS)
            for leaf in outline.leaves()}


def plan(topic: str, **kwargs) -> Outline:
    """Plan an outline for ``topic`` with the model (keywords: words, backend, model,
    prompts_dir, control, sources (files or folders the outline should cover), progress, and
    the options audience, style, language, sections, depth, seed, template (a built-in
    template's name or a YAML file: see :mod:`longwriter.templates`)).
    Returns the validated outline; save it with ``dump_outline``."""
    return _sync(aplan(topic, **kwargs))


def make_checker(thresholds: Thresholds | None = None) -> Checker:
    """The standard checker: MiniLM embeddings for English, character n-grams otherwise."""
    from .backends.embeddings import CharNgramEmbedder, minilm

    return Checker(minilm(), CharNgramEmbedder(), thresholds)


def _stale(graph: nx.DiGraph, finished: dict[str, SectionResult]) -> set[str]:
    """Sections that must be (re)written: unfinished ones and everything downstream of them."""
    todo = {n for n in graph if n not in finished}
    for node in list(todo):
        todo |= nx.descendants(graph, node)
    return todo


def expand(outline: Outline | str | Path, out: str | Path, **kwargs) -> DraftResult:
    """Write every section of ``outline`` (an Outline or a YAML path) into the directory
    ``out``, resuming what a previous run of the same job finished there. Returns the
    assembled document and the run report. Keywords: backend or model, settings, policy,
    concurrency (requests in flight; default: the engine's), prompts_dir, checker, progress,
    control, sources, formats (besides document.md: "html", "docx")."""
    return _sync(aexpand(outline, out, **kwargs))


async def aexpand(outline: Outline | str | Path, out: str | Path, *, backend: Backend | None = None,
                  model: str | ModelSpec | None = None, settings: WriterSettings | None = None,
                  policy: Policy = "chapter", concurrency: int | None = None, prompts_dir: str | Path | None = None,
                  checker: Checker | None = None, progress: Progress | None = None,
                  control: RunControl | None = None, sources: Sequence[str | Path] = (),
                  formats: Sequence[str] = ("md",)) -> DraftResult:
    """Async twin of :func:`expand`."""
    source = Path(outline) if isinstance(outline, (str, Path)) else None
    outline = load_outline(source) if source else outline
    progress, control = progress or Silent(), control or RunControl()
    graph, prompts = build_graph(outline, policy), Prompts(prompts_dir)
    with RunDir(out, topic=outline.topic, accept=[source] if source else [], notify=progress.warn) as run:
        index = index_sources(sources, run.cache_dir(SOURCES_DIR) if sources else None, progress)
        job = Job(outline, run, start_backend(backend, model, control, progress), prompts, settings or WriterSettings(),
                  policy, concurrency, checker, progress, control, index, formats)
        return await _expand(job, graph)


def draft(topic: str, out: str | Path, **kwargs) -> DraftResult:
    """Plan and write a document about ``topic`` into ``out``. An ``outline.yaml`` already in
    ``out`` (a resumed run, or one the user put there) is used instead of planning. Keywords:
    words, plan_options (a dict of :func:`plan`'s options), and those of :func:`expand`."""
    return _sync(adraft(topic, out, **kwargs))


async def adraft(topic: str, out: str | Path, *, words: int | None = None, backend: Backend | None = None,
                 model: str | ModelSpec | None = None, prompts_dir: str | Path | None = None,
                 plan_options: dict | None = None, settings: WriterSettings | None = None,
                 policy: Policy = "chapter", concurrency: int | None = None, checker: Checker | None = None,
                 progress: Progress | None = None, control: RunControl | None = None,
                 sources: Sequence[str | Path] = (), formats: Sequence[str] = ("md",)) -> DraftResult:
    """Async twin of :func:`draft`."""
    request = plan_request(topic, words, **(plan_options or {}))
    progress, control, prompts = progress or Silent(), control or RunControl(), Prompts(prompts_dir)
    out = Path(out)
    with RunDir(out, topic=request.topic, accept=[out / OUTLINE], notify=progress.warn) as run:
        index = index_sources(sources, run.cache_dir(SOURCES_DIR) if sources else None, progress)
        backend = start_backend(backend, model, control, progress)
        outline = _existing_outline(run, request.topic, progress)
        if outline is None:
            progress.stage("planning the outline")
            outline = await Planner(backend, prompts).plan(request, planning_lines(index, request.topic, backend),
                                                           request.load_template())
        job = Job(outline, run, backend, prompts, settings or WriterSettings(), policy, concurrency, checker,
                  progress, control, index, formats)
        return await _expand(job, build_graph(outline, policy))


def _existing_outline(run: RunDir, topic: str, progress: Progress) -> Outline | None:
    """The outline already in the run directory, if any; it must be about the same topic."""
    path = run.path / OUTLINE
    if not path.is_file():
        return None
    outline = load_outline(path)
    if not same_topic(outline.topic, topic):
        raise OutputError(f"'{path}' is about '{outline.topic[:80]}', not this topic; pass another --out")
    progress.stage(f"using the outline in {path}")
    return outline


async def _expand(job: Job, graph: nx.DiGraph) -> DraftResult:
    """Save the outline, find what is finished, load the checker, write the rest."""
    ensure_checker(job)
    job.control.check()
    writing = Writing.prepare(job, graph)
    job.progress.start(len(graph), writing.resumed)
    started = time.perf_counter()
    job.backend.on_batch = job.progress.batch
    try:
        await Scheduler(graph, job.backend, writing.writer.task, writing.on_done, done=set(writing.results),
                        concurrency=job.concurrency, should_stop=lambda: job.control.stopped).run()
    except BaseException:
        _assemble_quietly(job, writing.results)  # even a stopped run leaves a readable partial document
        raise
    finally:
        job.backend.on_batch = None
        await job.backend.aclose()
    return writing.finish(time.perf_counter() - started)


def ensure_checker(job: Job) -> None:
    """Load the checker's embedding model when the run needs it (checking, or attaching
    citations to a grounded run) and none was given."""
    if (job.settings.check or job.sources) and job.checker is None:
        job.progress.stage("loading the checker's embedding model")
        job.checker = make_checker()


@dataclass
class Writing:
    """One document being written: its graph, its section writer and the sections finished
    so far (resumed ones included). A batch holds one per document."""

    job: Job
    graph: nx.DiGraph
    writer: SectionWriter
    results: dict[str, SectionResult]
    resumed: int

    @classmethod
    def prepare(cls, job: Job, graph: nx.DiGraph) -> Writing:
        """Save the outline, keep the finished sections that are still valid, build the writer."""
        job.run.forget_removed(job.outline)
        job.run.save_outline(job.outline)
        finished = job.run.finished(job.outline)
        finished = {k: v for k, v in finished.items() if k not in _stale(graph, finished)}
        contexts = ContextBuilder(job.outline, graph, job.backend.count_tokens,
                                  passages=section_passages(job.sources, job.outline, job.backend.count_tokens))
        job.settings = job.settings.with_model_defaults(job.backend.recommended)
        writer = SectionWriter(job.outline, contexts, job.prompts, job.backend.count_tokens, job.settings,
                               job.checker if job.settings.check else None, job.checker if job.sources else None)
        for sid, r in finished.items():
            writer.texts[sid], writer.summaries[sid] = r.text, r.summary
        return cls(job, graph, writer, dict(finished), len(finished))

    def on_done(self, result: SectionResult) -> None:
        """A section finished: later sections read it, and it is saved at once."""
        self.writer.texts[result.id], self.writer.summaries[result.id] = result.text, result.summary
        self.results[result.id] = result
        self.job.run.save_section(result)
        self.job.progress.section(result)

    def finish(self, seconds: float) -> DraftResult:
        """Assemble document.md, write the exports and the report."""
        document = self.job.run.assemble(self.job.outline, self.results)
        exports = self.job.run.export(self.job.outline, document, self.job.formats)
        result = _finish(self.job, self.results, document, seconds, self.resumed)
        return result.model_copy(update={"exports": exports})


def _assemble_quietly(job: Job, results: dict[str, SectionResult]) -> None:
    """Assemble while another error is on its way out: a failure here must not hide it."""
    try:
        job.run.assemble(job.outline, results)
    except OutputError as err:
        job.progress.warn(str(err))


def _finish(job: Job, results: dict[str, SectionResult], document: str, seconds: float,
            resumed: int) -> DraftResult:
    ordered = [results[leaf.id] for leaf in job.outline.leaves()]
    produced = count_words(document)  # headings and References too: LongBench-Write counts the whole response
    report = Report(model=job.backend.name, policy=job.policy, required_words=job.outline.words,
                    produced_words=produced, length_score=round(length_score(job.outline.words, produced), 1),
                    seconds=round(seconds, 2), completion_tokens=sum(r.completion_tokens for r in ordered),
                    resumed_sections=resumed, engine=job.backend.report(),
                    sampling={k: getattr(job.settings, k) for k in ("temperature", "top_p", "repetition_penalty")},
                    problems=Report.count_problems(ordered), wrapper_sections=sum(1 for r in ordered if r.removed),
                    attributed_citations=sum(r.attributed for r in ordered),
                    sections=ordered)
    job.run.save_json(REPORT, report.model_dump(mode="json"))
    return DraftResult(outline=job.outline, directory=job.run.path, document=document, report=report)


def export_run(out: str | Path, formats: Sequence[str], *, notify=lambda text: None) -> list[Path]:
    """Write a run directory's document.md (as it is now: an editor's changes included) as
    each of ``formats`` (html, docx) next to it; returns the files written."""
    RunDir.read_only(out, notify)  # refuse a folder that holds no run
    with RunDir(out, notify=notify) as run:
        try:
            document = read_regular(run.path / DOCUMENT, MAX_FILE_BYTES).decode("utf-8")
        except (OSError, ValueError):  # missing, unreadable, too large, not UTF-8
            raise OutputError(f"'{run.path / DOCUMENT}' cannot be read; run expand on the outline again") from None
        return run.export(load_outline(run.path / OUTLINE), document, formats)


def rescore(out: str | Path, *, checker: Checker | None = None,
            notify=lambda text: None) -> list[tuple[str, str, Scores]]:
    """Re-score a finished (or partial) run directory, reading only: (id, title, scores) per
    written section, each compared against the sections before it, as the writer's checker does."""
    run = RunDir.read_only(out, notify)
    outline = load_outline(run.path / OUTLINE)
    finished = run.finished(outline)
    checker = checker or make_checker()
    rows, accepted = [], {}
    owed = owed_words(outline, {sid: r.sources for sid, r in finished.items()})
    for leaf in outline.leaves():
        if leaf.id not in finished:
            continue
        text = finished[leaf.id].text
        rows.append((leaf.id, leaf.title, checker.score(text, topic=outline.topic, title=leaf.title,
                                                        brief=leaf.brief, budget=net_words(leaf.words, owed[leaf.id]),
                                                        accepted=accepted, language=outline.language,
                                                        passages=finished[leaf.id].passages)))
        accept(accepted, leaf.title, leaf.id, text)
    return rows
