"""Batch jobs: many documents on one engine. Every document is planned at once (the engine
batches the planners' requests), then the sections of all documents go into one dependency
forest under one scheduler, so a batch of short posts keeps the engine as full as one long
document does.

Each document has its own run directory (``OUT/NAME``) and resumes on its own: run the same
batch again and finished documents are only reassembled, half-written ones carry on. A bad
line of the jobs file, or a document that fails (its template, its sources, its output
folder, a request the server refuses), is reported in one line and the others go on. Only a
stop (Ctrl-C) or a model or server that cannot be used at all ends the whole batch."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import defaults
from .backends import Backend, ModelSpec
from .checker import Checker
from .errors import InputError, Interrupted, LongwriterError, ModelError, OutputError
from .files import read_regular
from .graph import Policy, build_graph
from .outline import MAX_WORDS, slugify
from .pipeline import (SOURCES_DIR, DraftResult, Job, RunControl, Writing, _assemble_quietly, _existing_outline,
                       index_sources, make_checker, plan_request, planning_lines, start_backend)
from .planner import PlanRequest, Planner
from .prompts import Prompts
from .scheduler import Scheduler
from .store import OUTLINE, RunDir, atomic_write
from .writer import SectionResult, Task, WriterSettings

MAX_JOBS = 1_000  # documents in one batch
MAX_JOBS_BYTES = 16 * 2**20
SUMMARY = "batch.json"  # what the batch did, one entry per line of the jobs file
_PLAN_FIELDS = ("audience", "style", "language", "sections", "depth", "template")
_WRITE_FIELDS = {"temperature": "temperature", "top_p": "top_p", "repetition_penalty": "repetition_penalty",
                 "attempts": "max_attempts", "seed": "seed"}


class BatchJob(BaseModel):
    """One line of a jobs file: a document to write, and its own options."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    topic: str
    words: int | None = Field(None, ge=50, le=MAX_WORDS)
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                             description="its run folder under OUT (default: line number and topic)")
    template: str | None = None
    audience: str | None = Field(None, max_length=300)
    style: str | None = Field(None, max_length=300)
    language: str | None = None
    sections: int | None = None
    depth: int | None = None
    seed: int | None = Field(None, ge=0, le=defaults.MAX_SEED)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, ge=1.0, le=2.0)
    attempts: int | None = Field(None, ge=1, le=10)
    sources: list[str] = Field(default_factory=list, max_length=100)

    def request(self, seed: int) -> PlanRequest:
        """The planning request (validated now: template and topic included)."""
        options = {k: getattr(self, k) for k in _PLAN_FIELDS if getattr(self, k) is not None}
        return plan_request(self.topic, self.words, seed=self.seed if self.seed is not None else seed, **options)

    def settings(self, base: WriterSettings) -> WriterSettings:
        """The batch's writer settings with this line's own options on top."""
        return base.model_copy(update={v: getattr(self, k) for k, v in _WRITE_FIELDS.items()
                                       if getattr(self, k) is not None})


class Outcome(BaseModel):
    """What became of one line of the jobs file (written to OUT/batch.json)."""

    line: int
    name: str = ""
    topic: str = ""
    status: str  # done, failed or refused (a bad line)
    error: str = ""
    directory: str = ""
    words: int = 0
    required_words: int = 0
    length_score: float = 0.0
    sections: int = 0


class BatchResult(BaseModel):
    """What :func:`batch` returns: one outcome per line, and the documents written."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    outcomes: list[Outcome]
    results: dict[str, DraftResult] = {}  # by document name
    seconds: float = 0.0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != "done"]


# ---------------------------------------------------------------------------- the jobs file


def read_jobs(path: str | Path) -> list[tuple[int, BatchJob | str]]:
    """(line number, job or the one-line reason the line is refused) for every non-blank line
    of a JSON Lines file. A file that cannot be read at all is an InputError."""
    try:
        text = read_regular(Path(path), MAX_JOBS_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"jobs file '{path}': no such file") from None
    except (OSError, ValueError) as err:  # unreadable, too large, not UTF-8, a NUL in the path
        raise InputError(f"jobs file '{path}': cannot read it ({getattr(err, 'strerror', None) or err})") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise InputError(f"jobs file '{path}' has no jobs (one JSON object per line)")
    if len(lines) > MAX_JOBS:
        raise InputError(f"jobs file '{path}' has {len(lines)} jobs; at most {MAX_JOBS} a batch")
    return [(n, parse_job(line)) for n, line in lines]


def parse_job(line: str | dict) -> BatchJob | str:
    """A job from one JSON line (or a dict), or why it is refused, in one line."""
    try:
        raw = json.loads(line) if isinstance(line, str) else line
    except json.JSONDecodeError as err:
        return f"not JSON ({err.msg} at column {err.colno})"
    except (ValueError, RecursionError):  # a number of thousands of digits; nesting past Python's stack
        return "not usable JSON (nested too deeply, or a number too long)"
    if not isinstance(raw, dict):
        return "must be a JSON object such as {\"topic\": \"...\", \"words\": 300}"
    if "model" in raw:
        return "all documents of a batch share one model: pass --model (or --server) to the batch instead"
    try:
        return BatchJob.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"]))
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        return f"{where}: {message}" if where else message


# ---------------------------------------------------------------------------- one document


@dataclass
class Document:
    """One document of the batch, from its line to its result."""

    line: int
    spec: BatchJob
    name: str
    request: PlanRequest | None = None
    run: RunDir | None = None
    job: Job | None = None
    writing: Writing | None = None
    result: DraftResult | None = None
    error: str = ""
    index: Any = None
    started: float = field(default_factory=time.perf_counter)
    remaining: int = 0  # sections still to write
    finished: bool = False

    def fail(self, err: BaseException) -> None:
        """Mark the document failed (the first reason counts) and report it in one line."""
        if not self.error:
            self.error = _reason(err)

    def task(self, section_id: str) -> Task:
        """Write one section (nothing once the document has failed); it is saved at once, so
        its dependants read it and a stopped batch keeps it."""
        if self.error:
            return None
        result = yield from self.writing.writer.task(section_id)
        self.writing.on_done(result)
        return result

    def outcome(self) -> Outcome:
        done = self.result is not None and not self.error
        out = Outcome(line=self.line, name=self.name, topic=self.spec.topic, status="done" if done else "failed",
                      error=self.error, directory=str(self.run.path) if self.run else "")
        if self.result:
            r = self.result.report
            out = out.model_copy(update={"words": r.produced_words, "required_words": r.required_words,
                                         "length_score": r.length_score, "sections": len(r.sections)})
        return out


def _reason(err: BaseException) -> str:
    if isinstance(err, LongwriterError):
        return str(err)
    return f"internal error ({type(err).__name__}: {str(err)[:200]})"


def _fatal(err: BaseException) -> bool:
    """A failure no document can get past: a stop, or a model or server that cannot be used."""
    return isinstance(err, (Interrupted, ModelError, asyncio.CancelledError, KeyboardInterrupt))


def _folder(line: int, spec: BatchJob) -> str:
    return spec.name or f"{line:03d}-{slugify(spec.topic, 'document')[:40].strip('-')}"


# ---------------------------------------------------------------------------- the batch


@dataclass
class Batch:
    """One batch run's state (see the module docstring)."""

    documents: list[Document]
    refused: list[Outcome]
    out: Path
    backend: Backend
    prompts: Prompts
    settings: WriterSettings
    policy: Policy
    concurrency: int | None
    checker: Checker | None
    progress: Any
    control: RunControl
    formats: Sequence[str]

    @property
    def live(self) -> list[Document]:
        return [d for d in self.documents if not d.error]

    def report(self, doc: Document) -> None:
        self.progress.document(doc.outcome())

    def failed(self, doc: Document, err: BaseException) -> None:
        if _fatal(err):
            raise err
        doc.fail(err)
        self.report(doc)

    # ------------------------------------------------------------------ stages

    def open_runs(self) -> None:
        """Take each document's run folder (a folder in use or another topic's is one failure)."""
        for doc in self.documents:
            try:
                doc.run = RunDir(self.out / doc.name, topic=doc.request.topic, accept=[self.out / doc.name / OUTLINE],
                                 notify=_Prefixed(self.progress, doc.name).warn).__enter__()
                if doc.spec.sources:
                    folder = doc.run.cache_dir(SOURCES_DIR)
                    doc.index = index_sources(doc.spec.sources, folder, _Prefixed(self.progress, doc.name))
            except Exception as err:  # noqa: BLE001 - one document's problem, reported in one line
                self.failed(doc, err)

    def load_checker(self) -> None:
        """The checker's embedding model, loaded once for every document that needs it."""
        if self.checker is None and any(d.spec.settings(self.settings).check or d.index for d in self.live):
            self.progress.stage("loading the checker's embedding model")
            self.checker = make_checker()

    async def write(self) -> None:
        """Plan every document at once and write the sections of all of them in one forest;
        each document is assembled, exported and reported the moment its last section is done.
        On an engine that batches continuously, a document's sections join the forest the moment
        its plan is ready, so a slow plan (one that needed retries) holds back nothing else.
        On a padded engine writing starts when every plan is ready: it runs one stop string
        per step, so a plan's short title requests would wait behind 40-second drafting steps
        (measured: a 16-document batch took 158 s with planning and writing overlapped, 137 s
        without)."""
        todo = []
        for doc in self.live:
            try:
                todo.append((doc, _existing_outline(doc.run, doc.request.topic, _Prefixed(self.progress, doc.name))))
            except Exception as err:  # noqa: BLE001 - an outline.yaml there that is broken or another topic's
                self.failed(doc, err)
        if any(outline is None for _, outline in todo):
            planning = sum(o is None for _, o in todo)
            self.progress.stage(f"planning {planning} document{'s' * (planning != 1)}")
        scheduler = _ForestScheduler(nx.DiGraph(), self.backend, self._start, lambda result: None,
                                     concurrency=self.concurrency, should_stop=lambda: self.control.stopped,
                                     batch=self)
        self.backend.on_batch = self.progress.batch
        overlap = self.backend.continuous
        plans = [asyncio.create_task(self._prepare(doc, outline, scheduler if overlap else None))
                 for doc, outline in todo]
        try:
            if overlap:
                scheduler.feeders = set(plans)
            else:
                await asyncio.gather(*plans)  # a fatal failure (a stop, an unusable engine) is raised here
                self.control.check()
                for doc in self.documents:
                    if doc.writing and not doc.error:
                        scheduler.add(doc)
            await scheduler.run()
        except BaseException:
            for doc in self.documents:
                if doc.writing and not doc.finished:
                    _assemble_quietly(doc.job, doc.writing.results)  # a stopped batch leaves readable drafts
            raise
        finally:
            self.backend.on_batch = None
            for task in plans:
                task.cancel()
            await asyncio.gather(*plans, return_exceptions=True)

    def _start(self, node) -> Task:
        return self.documents[node[0]].task(node[1])

    async def _prepare(self, doc: Document, outline, scheduler: _ForestScheduler | None) -> None:
        """The document's outline (planned now unless its folder had one) and writer; its
        sections join ``scheduler``'s forest at once when one is given."""
        try:
            if outline is None:
                lines = planning_lines(doc.index, doc.request.topic, self.backend)
                outline = await Planner(self.backend, self.prompts).plan(doc.request, lines, doc.request.load_template())
            doc.job = Job(outline, doc.run, self.backend, self.prompts, doc.spec.settings(self.settings), self.policy,
                          self.concurrency, self.checker, _Prefixed(self.progress, doc.name), self.control, doc.index,
                          self.formats)
            doc.writing = Writing.prepare(doc.job, build_graph(outline, self.policy))
        except Exception as err:  # noqa: BLE001 - one document's plan; Batch.failed raises a fatal one
            self.failed(doc, err)
            return
        if scheduler is not None:
            self.control.check()
            scheduler.add(doc)

    def finish(self, doc: Document) -> None:
        """The document's last section is done (or it failed): assemble, export, report."""
        doc.finished = True
        if doc.error:
            if doc.writing:
                _assemble_quietly(doc.job, doc.writing.results)
            return
        try:
            doc.result = doc.writing.finish(time.perf_counter() - doc.started)
        except Exception as err:  # noqa: BLE001
            self.failed(doc, err)
            return
        self.report(doc)

    def close(self, failure: BaseException | None) -> None:
        """Release every run folder (a failed document that wrote nothing leaves none)."""
        for doc in self.documents:
            if failure is not None and doc.result is None:
                doc.fail(failure)  # what stopped the batch stopped it
            if doc.run is not None:
                err = failure or (OutputError(doc.error) if doc.error else None)
                doc.run.__exit__(type(err) if err else None, err, None)
                doc.run = doc.run if doc.run.path.exists() else None

    def summary(self) -> list[Outcome]:
        return sorted(self.refused + [d.outcome() for d in self.documents], key=lambda o: o.line)


class _ForestScheduler(Scheduler):
    """The scheduler over a batch's forest of (document, section) nodes: one document's
    failure fails that document only."""

    def __init__(self, *args, batch: Batch, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batch = batch

    def add(self, doc: Document) -> None:
        """Add the document's unfinished sections. They are ordered by their place in their own
        document first, so every document's opening sections go before any document's later ones."""
        graph, docs, k = doc.writing.graph, len(self.batch.documents), self.batch.documents.index(doc)
        todo = [n for n in graph if n not in doc.writing.results]  # finished ones need no node
        doc.remaining = len(todo)
        for node in todo:
            self.graph.add_node((k, node), order=graph.nodes[node]["order"] * docs + k)
        self.graph.add_edges_from(((k, u), (k, v), data) for u, v, data in graph.edges(data=True)
                                  if (k, u) in self.graph and (k, v) in self.graph)
        self.batch.progress.start(len(graph), len(graph) - len(todo))
        if not todo:
            self.batch.finish(doc)  # every section was written by an earlier run

    async def _section(self, node, slots) -> SectionResult | None:
        doc = self.batch.documents[node[0]]
        try:
            result = await super()._section(node, slots)
        except Exception as err:  # noqa: BLE001 - one document's failure, unless it is fatal
            if _fatal(err):
                raise
            if not doc.error:
                self.batch.failed(doc, err)
            result = None
        doc.remaining -= 1
        if doc.remaining == 0 and not doc.finished:
            self.batch.finish(doc)
        return result


class _Prefixed:
    """A document's own progress inside the batch view: its warnings carry its name."""

    def __init__(self, progress, name: str) -> None:
        self.progress, self.name = progress, name

    def stage(self, text: str) -> None: ...
    def warn(self, text: str) -> None:
        self.progress.warn(f"{self.name}: {text}")
    def start(self, total: int, done: int) -> None: ...
    def batch(self, stats) -> None: ...
    def section(self, result: SectionResult) -> None:
        self.progress.section(result)


class SilentBatch:
    """The API's default batch progress: nothing shown, warnings to logging."""

    def stage(self, text: str) -> None: ...
    def warn(self, text: str) -> None:
        import logging

        logging.getLogger("longwriter").warning(text)
    def documents(self, total: int) -> None: ...
    def start(self, total: int, done: int) -> None: ...
    def batch(self, stats) -> None: ...
    def section(self, result: SectionResult) -> None: ...
    def document(self, outcome: Outcome) -> None: ...


# ---------------------------------------------------------------------------- API


def batch(jobs: str | Path | Sequence[BatchJob | dict], out: str | Path, **kwargs) -> BatchResult:
    """Write every document of ``jobs`` (a JSON Lines file, or jobs as dicts or
    :class:`BatchJob`) into its own folder under ``out``, all on one engine. Keywords: backend
    or model, settings (the batch's; a line's own options override them), policy, concurrency,
    prompts_dir, checker, progress, control, formats. Never raises for one bad line or one
    failed document: see :attr:`BatchResult.failed`."""
    from .pipeline import _sync

    return _sync(abatch(jobs, out, **kwargs))


async def abatch(jobs: str | Path | Sequence[BatchJob | dict], out: str | Path, *, backend: Backend | None = None,
                 model: str | ModelSpec | None = None, settings: WriterSettings | None = None,
                 policy: Policy = "chapter", concurrency: int | None = None, prompts_dir: str | Path | None = None,
                 checker: Checker | None = None, progress=None, control: RunControl | None = None,
                 formats: Sequence[str] = ("md",)) -> BatchResult:
    """Async twin of :func:`batch`."""
    started, progress, control = time.perf_counter(), progress or SilentBatch(), control or RunControl()
    lines = read_jobs(jobs) if isinstance(jobs, (str, Path)) else [(n, parse_job(j) if isinstance(j, dict) else j)
                                                                   for n, j in enumerate(jobs, 1)]
    settings = settings or WriterSettings()
    documents, refused = _documents(lines, settings.seed)
    out = _out_folder(out)
    progress.documents(len(lines))
    for outcome in refused:
        progress.document(outcome)
    state = Batch(documents, refused, out, backend, Prompts(prompts_dir), settings, policy,
                  concurrency, checker, progress, control, formats)
    failure = None
    try:
        await _run(state, backend, model)
    except BaseException as err:
        failure = err
        raise
    finally:
        state.close(failure)
        atomic_write(out / SUMMARY, json.dumps([o.model_dump() for o in state.summary()], indent=1,
                                              ensure_ascii=False))
    return BatchResult(outcomes=state.summary(), results={d.name: d.result for d in documents if d.result},
                       seconds=round(time.perf_counter() - started, 2))


async def _run(state: Batch, backend: Backend | None, model) -> None:
    state.open_runs()
    if not state.live:
        return
    state.backend = start_backend(backend, model, state.control, state.progress)
    try:
        state.load_checker()
        state.control.check()
        await state.write()
    finally:
        await state.backend.aclose()


def _documents(lines, seed: int) -> tuple[list[Document], list[Outcome]]:
    """The jobs as documents, and the lines refused: bad ones, an empty topic, a template that
    cannot be used, a folder name used twice (all before any model loads)."""
    documents, refused, names = [], [], {}
    for n, job in lines:
        try:
            request = job.request(seed) if isinstance(job, BatchJob) else None
        except LongwriterError as err:
            job = str(err)
        if isinstance(job, str):
            refused.append(Outcome(line=n, status="refused", error=f"line {n}: {job}"))
            continue
        name = _folder(n, job)
        if name in names:
            refused.append(Outcome(line=n, topic=job.topic, status="refused",
                                   error=f"line {n}: name '{name}' is already line {names[name]}'s"))
            continue
        names[name] = n
        documents.append(Document(n, job, name, request))
    return documents, refused


def _out_folder(out: str | Path) -> Path:
    out = Path(out)
    if not str(out).strip():
        raise OutputError("the output path is empty")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create '{out}' ({err.strerror or 'not a directory'})") from None
    return out
