"""The command line (the only module that imports click). Every known failure becomes a
one-line message and its own exit code; the pipeline is imported only inside commands so
``longwriter --help`` is instant."""

from __future__ import annotations

import math
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from . import defaults
from .errors import Interrupted, LongwriterError

POLICY = click.Choice(["serial", "chapter", "independent"])


def _finite(ctx, param, value):
    """Refuse nan and inf, which click's FloatRange lets through."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _device(ctx, param, value):
    if not defaults.DEVICE.match(value):
        raise click.BadParameter(f"'{value}': use auto, cpu, mps, cuda or cuda:N")
    return value


class _Group(click.Group):
    """click prints a usage error as three lines (usage, hint, ``Error: ...``); longwriter's
    contract is one ``error:`` line and a distinct exit code (2) for every bad input."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as err:  # plain `longwriter`: its help, as usual
            click.echo(err.ctx.get_help())
            sys.exit(0)
        except click.ClickException as err:
            from .console import error

            where = getattr(getattr(err, "ctx", None), "command_path", None)
            error(err.format_message() + (f" (see '{where} --help')" if where else ""))
            sys.exit(err.exit_code)
        except click.Abort:
            sys.exit(Interrupted.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


_LABELS = {"out": "output path", "outline": "outline file", "thresholds": "thresholds file",
           "prompts_dir": "--prompts-dir", "model": "--model"}


def _check_paths(**paths: str | None) -> None:
    """Refuse, with the exit code of what each path is for, a path that is empty or that the
    system will not even look up (a name longer than 255 bytes, a loop of links): otherwise
    these surface later as tracebacks. Keys: out, outline, thresholds, prompts_dir, model."""
    from . import errors

    kinds = {"out": errors.OutputError, "outline": errors.OutlineError, "thresholds": errors.InputError,
             "prompts_dir": errors.PromptError, "model": errors.ModelError}
    for key, value in paths.items():
        if value is None:
            continue
        if not value.strip():
            raise kinds[key](f"{_LABELS[key]}: an empty path was given")
        try:
            os.stat(value)
        except (FileNotFoundError, NotADirectoryError):
            pass  # may be created (out) or reported by its own reader
        except (OSError, ValueError) as err:
            raise kinds[key](f"'{value}': {getattr(err, 'strerror', None) or 'invalid path'}") from None


@contextmanager
def _graceful_interrupts(control):
    """First Ctrl-C: stop (planning or writing), save finished work, exit 130. Second: abort."""
    hits = []

    def handler(signum, frame):
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt
        from .console import info

        info("\nstopping after saving finished sections (Ctrl-C again to abort now)")
        control.stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield hits
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(fn):
    """Call ``fn`` and turn every failure into a one-line message and its exit code."""
    from .console import error

    try:
        return fn()
    except LongwriterError as err:
        error(str(err))
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        error("aborted; sections finished before the abort are saved and the run can be resumed")
        sys.exit(Interrupted.exit_code)
    except Exception as err:  # a bug of ours: one line for the user, the traceback in a file
        if os.environ.get("LONGWRITER_DEBUG"):
            raise
        error(f"internal error ({type(err).__name__}: {str(err)[:200]}); details in {_crash_log()}; "
              "finished sections are saved")
        sys.exit(1)


def _crash_log() -> str:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="longwriter-crash-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(traceback.format_exc())
    return path


def model_options(f):
    f = click.option("--model", "-m", default=None, help="Hugging Face model id or local directory "
                     "(default: the embedded SmolLM2-135M-Instruct); with --server, the name the server serves "
                     "(default: its only model).")(f)
    f = click.option("--server", "servers", multiple=True, metavar="URL",
                     help="An OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama) to write with instead of "
                     "a model in this process; repeat for replicas of one model.")(f)
    f = click.option("--api-key", default=None, help="The servers' API key (default: $LONGWRITER_API_KEY, "
                     "else $OPENAI_API_KEY).")(f)
    f = click.option("--timeout", type=click.FloatRange(min=1, max=86_400), callback=_finite, default=600,
                     show_default=True, help="Seconds one server request may take.")(f)
    f = click.option("--device", default="auto", show_default=True, callback=_device,
                     help="auto, cpu, mps, cuda or cuda:N.")(f)
    f = click.option("--dtype", type=click.Choice(defaults.DTYPES), default="auto", show_default=True,
                     help="The in-process model's weights: auto is bfloat16 on a GPU and on a CPU that multiplies "
                     "it natively (AVX512-BF16, AMX), else float32 (the same text for a seed in any batch).")(f)
    f = click.option("--trust-remote-code", is_flag=True, help="Allow model code from the model's repository.")(f)
    f = click.option("--prompts-dir", type=click.Path(), default=None,
                     help="Directory of .j2 templates overriding the built-in prompts.")(f)
    return f


def seed_option(f):
    return click.option("--seed", type=click.IntRange(0, defaults.MAX_SEED), default=0, show_default=True,
                        help="Changes every random draw (0 to 2^63-1).")(f)


def sources_option(f):
    return click.option("--sources", "sources", multiple=True, type=click.Path(),
                        help="A file or folder of your own material (.md .txt .html .pdf .docx) to plan and "
                        "write from, cited as [n] with a References list; repeat for more.")(f)


def plan_options(f):
    f = click.option("--topic", "-t", required=True, help="What the document is about (may state a length).")(f)
    f = click.option("--words", "-w", type=click.IntRange(min=50, max=defaults.MAX_WORDS), default=None,
                     help="Target length (English words / CJK characters). Default: from the topic, else 1200.")(f)
    f = click.option("--audience", default=defaults.AUDIENCE, show_default=True)(f)
    f = click.option("--style", default=defaults.STYLE, show_default=True)(f)
    f = click.option("--language", default=None, help="Language code (default: from the topic; zh or en).")(f)
    f = click.option("--sections", type=click.IntRange(min=1, max=defaults.MAX_SECTIONS), default=None,
                     help="Number of top-level sections (default: from --words).")(f)
    f = click.option("--depth", type=click.IntRange(1, 2), default=None, help="1 = flat, 2 = chapters.")(f)
    f = click.option("--template", default=None, metavar="NAME|FILE",
                     help="A house format that fixes the top-level sections: tech-blog, report, article (see "
                     "'longwriter templates') or your own YAML file.")(f)
    f = seed_option(f)
    return f


def write_options(f):
    f = click.option("--context", "policy", type=POLICY, default="chapter", show_default=True,
                     help="serial: one chain; chapter: chapters in parallel; independent: outline only.")(f)
    f = click.option("--batch-size", type=click.IntRange(min=1, max=4096), default=None,
                     help="Rows the in-process model runs at once (default: automatic).")(f)
    f = click.option("--engine", type=click.Choice(["auto", "stepping", "padded"]), default="auto",
                     show_default=True, help="In-process batching: stepping (rows join and leave between "
                     "tokens) or padded (one generate per batch); auto: stepping where the model's cache allows "
                     "it.")(f)
    f = click.option("--concurrency", type=click.IntRange(min=1, max=4096), default=None,
                     help="Requests in flight at once (default: the engine's; 2x the batch size in process).")(f)
    f = click.option("--no-check", is_flag=True, help="Skip the topic-consistency checker.")(f)
    f = click.option("--judge", is_flag=True, help="Also ask the model a yes/no relevance question.")(f)
    f = click.option("--attempts", type=click.IntRange(1, 10), default=defaults.MAX_ATTEMPTS,
                     show_default=True, help="Drafts per section when the checker rejects one.")(f)
    f = click.option("--temperature", type=click.FloatRange(0.0, 2.0), callback=_finite, default=None,
                     help=f"Sampling temperature for sections (0 = greedy). Default: the model's recommended "
                     f"(its generation config; the embedded model: 0.2), else {defaults.TEMPERATURE}.")(f)
    f = click.option("--top-p", type=click.FloatRange(0.0, 1.0, min_open=True), callback=_finite, default=None,
                     help=f"Nucleus sampling for sections. Default: the model's recommended, else {defaults.TOP_P}.")(f)
    f = click.option("--repetition-penalty", type=click.FloatRange(1.0, 2.0), callback=_finite, show_default=True,
                     default=defaults.REPETITION_PENALTY,
                     help="Penalty on tokens already used (1.0 = none; rewrites of looping drafts add 0.1).")(f)
    f = thresholds_option(f)
    f = click.option("--format", "formats", default="md", show_default=True, callback=_formats,
                     help="Files to write besides document.md, comma-separated: md, html (one page with a table "
                     "of contents), docx (Word styles).")(f)
    return f


def _formats(ctx, param, value):
    from .errors import InputError
    from .export import parse_formats

    try:
        return parse_formats(value)
    except InputError as err:
        raise click.BadParameter(str(err)) from None


def thresholds_option(f):
    return click.option("--thresholds", "thresholds_file", type=click.Path(), default=None,
                        help="YAML file overriding checker thresholds (see README).")(f)


def _check_prompts(folder: str | None) -> None:
    """Compile the user's templates and meta-talk patterns now: a broken one is refused in one
    line before any model loads."""
    from .prompts import Prompts
    from .wrappers import MetaTalk

    MetaTalk(Prompts(folder))


def _checker(o: dict):
    """The checker with the user's thresholds (None when --no-check). Building it is cheap:
    its embedding model loads on first use, inside the run."""
    if o.get("no_check"):
        return None
    from .checker import load_thresholds
    from .pipeline import make_checker

    thresholds = load_thresholds(o["thresholds_file"]) if o.get("thresholds_file") else None
    return make_checker(thresholds)


def _plan_kwargs(o: dict) -> dict:
    return {k: o[k] for k in ("audience", "style", "language", "sections", "depth", "seed", "template")}


def _settings(o: dict):
    from .writer import WriterSettings

    return WriterSettings(check=not o["no_check"], judge=o["judge"], max_attempts=o["attempts"], seed=o["seed"],
                          temperature=o["temperature"], top_p=o["top_p"], repetition_penalty=o["repetition_penalty"])


def _model(o: dict):
    from .backends import ModelSpec

    return ModelSpec(name=o["model"], device=o["device"], batch_size=o.get("batch_size"),
                     trust_remote_code=o["trust_remote_code"], engine=o.get("engine", "auto"), dtype=o["dtype"],
                     servers=tuple(o["servers"]), api_key=o["api_key"], timeout=o["timeout"])


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="longwriter")
def main() -> None:
    """Write long, coherent documents with a local language model.

    \b
    longwriter draft --topic "The history of coffee" --words 1200 --out coffee/
    longwriter plan --topic "..." -o outline.yaml   (edit it)   longwriter expand outline.yaml --out DIR
    """


@main.command()
@plan_options
@sources_option
@model_options
@click.option("--output", "-o", type=click.Path(), default="outline.yaml", show_default=True)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def plan(**o) -> None:
    """Plan an outline and save it as YAML for editing."""

    def go():
        from .console import info
        from .outline import dump_outline
        from .pipeline import RunControl, plan_request
        from .pipeline import plan as plan_outline

        _check_paths(out=o["output"], prompts_dir=o["prompts_dir"], model=o["model"])
        request = plan_request(o["topic"], o["words"], **_plan_kwargs(o))  # refuse bad input first
        _check_prompts(o["prompts_dir"])
        output = _output_file(Path(o["output"]), o["force"])
        control = RunControl()
        if not o["servers"]:
            info(f"loading model {o['model'] or 'smollm2-135m-instruct (embedded)'}...", style="dim")
        with _graceful_interrupts(control):
            outline = plan_outline(request.topic, model=_model(o), prompts_dir=o["prompts_dir"], control=control,
                                   sources=o["sources"], progress=_Warnings(),
                                   **request.model_dump(exclude={"topic", "max_attempts"}))
        _write_text(output, dump_outline(outline))
        info(f"outline with {len(outline.leaves())} sections, {outline.words} words -> {output}")

    _run(go)


def _output_file(path: Path, force: bool) -> Path:
    """An output file we may write: never a directory, never the user's file unless --force."""
    from .errors import OutputError

    if path.is_dir():
        raise OutputError(f"'{path}' is a directory")
    if path.exists() and not force:
        raise OutputError(f"'{path}' exists; pass --force to replace it, or -o another file")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write '{path}': no directory '{path.parent}'")
    return path


def _write_text(path: Path, text: str) -> None:
    from .errors import OutputError
    from .store import atomic_write

    try:
        atomic_write(path, text)
    except OSError as err:
        raise OutputError(f"cannot write '{path}' ({err.strerror})") from None


@main.command()
@click.argument("outline_file", type=click.Path())
@click.option("--out", "-o", type=click.Path(), required=True, help="Output directory (resumes if it exists).")
@sources_option
@write_options
@model_options
@seed_option
def expand(outline_file: str, out: str, **o) -> None:
    """Write the document for an (edited) outline YAML file."""

    def go():
        from .outline import load_outline
        from .pipeline import expand as expand_outline

        _check_paths(outline=outline_file, out=out, prompts_dir=o["prompts_dir"], model=o["model"],
                     thresholds=o["thresholds_file"])
        load_outline(outline_file)  # refuse bad input before anything else
        _check_prompts(o["prompts_dir"])
        checker = _checker(o)
        _write_document(lambda control, progress: expand_outline(
            Path(outline_file), out, model=_model(o), settings=_settings(o), policy=o["policy"],
            concurrency=o["concurrency"], prompts_dir=o["prompts_dir"], checker=checker, progress=progress,
            control=control, sources=o["sources"], formats=o["formats"]))

    _run(go)


@main.command()
@plan_options
@sources_option
@write_options
@model_options
@click.option("--out", "-o", type=click.Path(), default=None,
              help="Output directory (default: from the topic, unique per topic).")
def draft(out: str | None, **o) -> None:
    """Plan and write a whole document in one go."""

    def go():
        from .pipeline import draft as draft_document
        from .pipeline import plan_request
        from .store import default_out

        _check_paths(out=out, prompts_dir=o["prompts_dir"], model=o["model"], thresholds=o["thresholds_file"])
        request = plan_request(o["topic"], o["words"], **_plan_kwargs(o))
        target = default_out(request.topic) if out is None else out
        _check_prompts(o["prompts_dir"])
        checker = _checker(o)
        _write_document(lambda control, progress: draft_document(
            request.topic, target, words=request.words, model=_model(o), prompts_dir=o["prompts_dir"],
            plan_options=_plan_kwargs(o), settings=_settings(o), policy=o["policy"], concurrency=o["concurrency"],
            checker=checker, progress=progress, control=control, sources=o["sources"], formats=o["formats"]))

    _run(go)


class _Warnings:
    """Progress for `plan`, which has no live view: stages are silent, warnings are printed."""

    def stage(self, text: str) -> None: ...

    def warn(self, text: str) -> None:
        from .console import warn

        warn(text)


def _write_document(run) -> None:
    from .console import RichProgress, info
    from .pipeline import RunControl

    control = RunControl()
    with _graceful_interrupts(control), RichProgress() as progress:
        result = run(control, progress)
    r = result.report
    info(f"{result.directory / 'document.md'}: {len(r.sections)} sections, {r.produced_words} words "
         f"(asked {r.required_words}, length score {r.length_score}), {r.seconds:.0f} s")
    for path in result.exports:
        info(f"{path}")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--worst", type=click.IntRange(1, 100_000), default=10, show_default=True,
              help="How many sections to list.")
@thresholds_option
def check(run_dir: str, worst: int, thresholds_file: str | None) -> None:
    """Re-score a finished draft and list its worst sections (reads only)."""

    def go():
        from .console import scores_table, warn
        from .pipeline import rescore
        from .store import RunDir

        _check_paths(out=run_dir, thresholds=thresholds_file)
        RunDir.read_only(run_dir)  # refuse a folder that holds no run before loading anything
        rows = rescore(run_dir, checker=_checker({"thresholds_file": thresholds_file}), notify=warn)
        scores_table(rows, worst)
        failing = sum(1 for _, _, s in rows if not s.passed)
        grounded = [s.grounding for _, _, s in rows if s.grounding is not None]
        mean = f", grounding {sum(grounded) / len(grounded):.2f} on average" if grounded else ""
        click.echo(f"{len(rows)} sections scored, {failing} failing{mean}")

    _run(go)


@main.command()
@click.argument("name", required=False)
@click.option("--language", default="en", show_default=True, help="The version to show (en or zh).")
def templates(name: str | None, language: str) -> None:
    """List the built-in document templates, or show one (NAME) as YAML to copy and edit."""

    def go():
        from . import templates as house

        if name is None:
            for known in house.names():
                t = house.load(known, language)
                click.echo(f"{known:10} {' / '.join(s.title for s in t.sections)}")
            return
        if name not in house.names():
            raise house.TemplateError(f"no built-in template '{name[:80]}': use one of {', '.join(house.names())}")
        click.echo(house.source(name, language), nl=False)

    _run(go)


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--to", "formats", required=True, callback=_formats, metavar="html|docx",
              help="Format(s) to write next to document.md, comma-separated (html, docx).")
def export(run_dir: str, formats: tuple[str, ...]) -> None:
    """Export a run's document.md (edits included) as HTML or Word."""

    def go():
        from .console import info, warn
        from .pipeline import export_run

        _check_paths(out=run_dir)
        for path in export_run(run_dir, formats, notify=warn):
            info(str(path))

    _run(go)


@main.command()
@click.argument("jobs_file", type=click.Path())
@click.option("--out", "-o", type=click.Path(), required=True,
              help="Folder for the documents: one run folder per line (resumes if it exists).")
@write_options
@model_options
@seed_option
def batch(jobs_file: str, out: str, **o) -> None:
    """Write many documents on one engine, from a JSON Lines file: one object per line, such
    as {"topic": "...", "words": 300, "template": "tech-blog"} (also name, audience, style,
    language, sections, depth, seed, temperature, top_p, repetition_penalty, attempts, sources)."""

    def go():
        from .batch import batch as run_batch
        from .batch import read_jobs
        from .console import BatchProgress, info
        from .errors import BatchIncomplete
        from .pipeline import RunControl

        _check_paths(out=out, prompts_dir=o["prompts_dir"], model=o["model"], thresholds=o["thresholds_file"])
        jobs = read_jobs(jobs_file)  # an unreadable file is refused before any model loads
        _check_prompts(o["prompts_dir"])
        checker, control = _checker(o), RunControl()
        with _graceful_interrupts(control), BatchProgress() as progress:
            result = run_batch(jobs_file, out, model=_model(o), settings=_settings(o), policy=o["policy"],
                               concurrency=o["concurrency"], prompts_dir=o["prompts_dir"], checker=checker,
                               progress=progress, control=control, formats=o["formats"])
        done = len(result.outcomes) - len(result.failed)
        words = sum(o.words for o in result.outcomes)
        info(f"{done} of {len(jobs)} documents written, {words} words, {result.seconds:.0f} s -> {Path(out) / 'batch.json'}")
        if result.failed:
            raise BatchIncomplete(f"{len(result.failed)} of {len(jobs)} documents were not written (see above)")

    _run(go)
