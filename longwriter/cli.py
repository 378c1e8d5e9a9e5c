"""The command line (the only module that imports click). Every known failure becomes a
one-line message and its own exit code; the pipeline is imported only inside commands so
``longwriter --help`` is instant."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from .errors import Interrupted, LongwriterError

POLICY = click.Choice(["serial", "chapter", "independent"])


@contextmanager
def _graceful_interrupts(backend_ref: list):
    """First Ctrl-C: stop generating, save finished work, exit. Second: abort at once."""
    hits = []

    def handler(signum, frame):
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt
        from .console import info

        info("\nstopping after saving finished sections (Ctrl-C again to abort now)")
        if backend_ref:
            backend_ref[0].cancel()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield hits
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(fn):
    """Call ``fn`` and turn the project's errors into one-line messages and exit codes."""
    from .console import error

    try:
        return fn()
    except LongwriterError as err:
        error(str(err))
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        error("aborted; sections finished before the abort are saved and the run can be resumed")
        sys.exit(Interrupted.exit_code)


def model_options(f):
    f = click.option("--model", "-m", default=None, help="Hugging Face model id or local directory "
                     "(default: the embedded SmolLM2-135M-Instruct).")(f)
    f = click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")(f)
    f = click.option("--trust-remote-code", is_flag=True, help="Allow model code from the model's repository.")(f)
    f = click.option("--prompts-dir", type=click.Path(), default=None,
                     help="Directory of .j2 templates overriding the built-in prompts.")(f)
    return f


def plan_options(f):
    f = click.option("--topic", "-t", required=True, help="What the document is about (may state a length).")(f)
    f = click.option("--words", "-w", type=click.IntRange(min=50, max=200_000), default=None,
                     help="Target length (English words / CJK characters). Default: from the topic, else 1200.")(f)
    f = click.option("--audience", default="general readers", show_default=True)(f)
    f = click.option("--style", default="clear, informative prose", show_default=True)(f)
    f = click.option("--language", default=None, help="Language code (default: from the topic; zh or en).")(f)
    f = click.option("--sections", type=click.IntRange(min=1, max=200), default=None,
                     help="Number of top-level sections (default: from --words).")(f)
    f = click.option("--depth", type=click.IntRange(1, 2), default=None, help="1 = flat, 2 = chapters.")(f)
    f = click.option("--seed", type=int, default=0, show_default=True)(f)
    return f


def write_options(f):
    f = click.option("--context", "policy", type=POLICY, default="chapter", show_default=True,
                     help="serial: one chain; chapter: chapters in parallel; independent: outline only.")(f)
    f = click.option("--batch-size", type=click.IntRange(min=1), default=None,
                     help="Requests per generate call (default: automatic).")(f)
    f = click.option("--no-check", is_flag=True, help="Skip the topic-consistency checker.")(f)
    f = click.option("--judge", is_flag=True, help="Also ask the model a yes/no relevance question.")(f)
    f = click.option("--attempts", type=click.IntRange(1, 10), default=2, show_default=True,
                     help="Drafts per section when the checker rejects one.")(f)
    f = click.option("--temperature", type=click.FloatRange(0.0, 2.0), default=0.7, show_default=True,
                     help="Sampling temperature for sections (0 = greedy).")(f)
    f = click.option("--repetition-penalty", type=click.FloatRange(1.0, 2.0), default=1.15, show_default=True,
                     help="Penalty on tokens already used (1.0 = none; rewrites of looping drafts add 0.1).")(f)
    f = thresholds_option(f)
    return f


def thresholds_option(f):
    return click.option("--thresholds", "thresholds_file", type=click.Path(dir_okay=False), default=None,
                        help="YAML file overriding checker thresholds (see README).")(f)


def _checker(o: dict):
    """The checker with the user's thresholds (None when --no-check: nothing to load)."""
    if o.get("no_check"):
        return None
    from .checker import load_thresholds
    from .pipeline import make_checker

    thresholds = load_thresholds(o["thresholds_file"]) if o.get("thresholds_file") else None
    return make_checker(thresholds)


def _plan_kwargs(o: dict) -> dict:
    return {k: o[k] for k in ("audience", "style", "language", "sections", "depth", "seed")}


def _settings(o: dict):
    from .writer import WriterSettings

    return WriterSettings(check=not o["no_check"], judge=o["judge"], max_attempts=o["attempts"], seed=o["seed"],
                          temperature=o["temperature"], repetition_penalty=o["repetition_penalty"])


def _backend(o: dict, ref: list):
    from .backends import load_backend
    from .console import info

    info(f"[dim]loading model {o['model'] or 'smollm2-135m-instruct (embedded)'}...[/dim]")
    backend = load_backend(o["model"], device=o["device"], batch_size=o.get("batch_size"),
                           trust_remote_code=o["trust_remote_code"])
    ref.append(backend)
    return backend


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="longwriter")
def main() -> None:
    """Write long, coherent documents with a local language model.

    \b
    longwriter draft --topic "The history of coffee" --words 1200 --out coffee/
    longwriter plan --topic "..." -o outline.yaml   (edit it)   longwriter expand outline.yaml --out DIR
    """


@main.command()
@plan_options
@model_options
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="outline.yaml", show_default=True)
def plan(**o) -> None:
    """Plan an outline and save it as YAML for editing."""

    def go():
        from .outline import dump_outline
        from .pipeline import plan as plan_outline
        from .planner import check_topic
        from .prompts import Prompts

        check_topic(o["topic"])
        Prompts(o["prompts_dir"])  # refuse a bad prompts directory before loading the model
        outline = plan_outline(o["topic"], words=o["words"], backend=_backend(o, []), prompts_dir=o["prompts_dir"],
                               **_plan_kwargs(o))
        _write_text(Path(o["output"]), dump_outline(outline))
        from .console import info

        info(f"outline with {len(outline.leaves())} sections, {outline.words} words -> {o['output']}")

    _run(go)


def _write_text(path: Path, text: str) -> None:
    from .errors import OutputError
    from .store import atomic_write

    try:
        atomic_write(path, text)
    except OSError as err:
        raise OutputError(f"cannot write '{path}' ({err.strerror})") from None


@main.command()
@click.argument("outline_file", type=click.Path(dir_okay=False))
@click.option("--out", "-o", type=click.Path(), required=True, help="Output directory (resumes if it exists).")
@write_options
@model_options
@click.option("--seed", type=int, default=0, show_default=True)
def expand(outline_file: str, out: str, **o) -> None:
    """Write the document for an (edited) outline YAML file."""

    def go():
        from .outline import load_outline
        from .pipeline import expand as expand_outline
        from .prompts import Prompts
        from .store import RunDir

        outline = load_outline(outline_file)  # refuse bad input before the model loads
        Prompts(o["prompts_dir"])
        RunDir(out)
        checker = _checker(o)
        _write_document(lambda ref, progress: expand_outline(
            outline, out, backend=_backend(o, ref), settings=_settings(o), policy=o["policy"],
            batch_size=o["batch_size"], prompts_dir=o["prompts_dir"], checker=checker, progress=progress))

    _run(go)


@main.command()
@plan_options
@write_options
@model_options
@click.option("--out", "-o", type=click.Path(), default=None, help="Output directory (default: from the topic).")
def draft(out: str | None, **o) -> None:
    """Plan and write a whole document in one go."""

    def go():
        from .outline import slugify
        from .pipeline import draft as draft_document
        from .planner import check_topic
        from .prompts import Prompts
        from .store import RunDir

        topic = check_topic(o["topic"])
        target = out or slugify(topic, "document")
        Prompts(o["prompts_dir"])
        RunDir(target)
        checker = _checker(o)
        _write_document(lambda ref, progress: draft_document(
            topic, target, words=o["words"], backend=_backend(o, ref), prompts_dir=o["prompts_dir"],
            plan_options=_plan_kwargs(o), settings=_settings(o), policy=o["policy"], batch_size=o["batch_size"],
            checker=checker, progress=progress))

    _run(go)


def _write_document(run) -> None:
    from .console import RichProgress, info

    ref: list = []
    with _graceful_interrupts(ref), RichProgress() as progress:
        result = run(ref, progress)
    r = result.report
    info(f"[bold]{result.directory / 'document.md'}[/bold]: {len(r.sections)} sections, {r.produced_words} words "
         f"(asked {r.required_words}, length score {r.length_score}), {r.seconds:.0f} s")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--worst", type=int, default=10, show_default=True, help="How many sections to list.")
@thresholds_option
def check(run_dir: str, worst: int, thresholds_file: str | None) -> None:
    """Re-score a finished draft and list its worst sections."""

    def go():
        from .console import scores_table
        from .errors import OutputError
        from .pipeline import rescore

        if not (Path(run_dir) / "outline.yaml").is_file():
            raise OutputError(f"'{run_dir}' is not a longwriter run directory (no outline.yaml)")
        rows = rescore(run_dir, checker=_checker({"thresholds_file": thresholds_file}))
        scores_table(rows, worst)
        failing = sum(1 for _, _, s in rows if not s.passed)
        click.echo(f"{len(rows)} sections scored, {failing} failing")

    _run(go)
