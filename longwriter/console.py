"""Terminal output (the only module that imports rich): live progress while writing, and the
checker's table of the worst sections.

Everything printed here may contain user text (paths, section ids, titles, topics, error
messages), so nothing is ever passed to rich as a markup string: text goes in as
``rich.text.Text`` objects, which rich prints as they are (``[bold]``, ``[/x]`` and
``:smile:`` included), and styles are applied to whole pieces. Control characters in user
text (an ESC that would drive the terminal, a carriage return that would hide the start of a
line) are shown as ``\\xNN`` escapes, and a one-line message stays on one line.
"""

from __future__ import annotations

import re
import sys

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NEWLINE = re.compile(r"\s*\n\s*")

err = Console(stderr=True)
# The scores table's console; None: a fresh one on whatever sys.stdout is at the time.
out: Console | None = None


def printable(message, one_line: bool = False) -> str:
    """``message`` with control characters escaped (``\\x1b``); newlines become spaces when
    ``one_line``, so an error or warning is always exactly one line."""
    text = _NEWLINE.sub(" ", str(message)) if one_line else str(message)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _line(prefix: str, style: str, message) -> Text:
    """``prefix`` in ``style``, a space, then ``message`` as one printable line."""
    return Text.assemble((prefix, style), " ", printable(message, one_line=True))


def _say(console: Console, text: Text) -> None:
    # soft_wrap: a long line is left to the terminal, never cut into several lines by rich.
    console.print(text, soft_wrap=True, highlight=False)


def error(message: str) -> None:
    """A one-line error on stderr: ``error: <message>``, the prefix in bold red."""
    _say(err, _line("error:", "bold red", message))


def warn(message: str) -> None:
    """A one-line warning on stderr: ``warning: <message>``, the prefix in yellow."""
    _say(err, _line("warning:", "yellow", message))


def info(message: str, style: str | None = None) -> None:
    """``message`` on stderr as it is, optionally styled as a whole (e.g. ``style="dim"``)."""
    _say(err, Text(printable(message), style=style or ""))


class RichProgress:
    """Sections done / total, tokens per second of the last batch, and the current stage."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[rate]}", markup=False),
                            TimeElapsedColumn(), console=err, disable=not sys.stderr.isatty())
        self.task = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def stage(self, text: str) -> None:
        """What the run is doing now (``planning``, ``loading model``...), dimmed."""
        _say(self.bar.console, Text(printable(f"{text}..."), style="dim"))

    def start(self, total: int, done: int) -> None:
        """Start the bar at ``done`` of ``total`` sections (a resumed run starts past 0)."""
        if done:
            _say(self.bar.console, Text(f"{done} of {total} sections already written; resuming", style="dim"))
        self.task = self.bar.add_task("sections", total=total, completed=done, rate="")

    def batch(self, stats) -> None:
        """Show the size and speed of the batch just generated."""
        rate = stats.completion_tokens / stats.seconds if stats.seconds else 0.0
        self.bar.update(self.task, rate=f"batch {stats.size}, {rate:.0f} tok/s")

    def section(self, result) -> None:
        """One section finished: advance the bar and say which."""
        self.bar.advance(self.task)
        tries = f", {result.attempts} drafts" if result.attempts > 1 else ""
        _say(self.bar.console, _line("done", "green", f"{result.id} ({result.words}/{result.budget} words{tries})"))

    def warn(self, text: str) -> None:
        """A one-line warning printed above the live bar."""
        _say(self.bar.console, _line("warning:", "yellow", text))


class BatchProgress(RichProgress):
    """A batch's one live view: documents done, sections done with the engine's tokens/s and
    the time left, and one line per document as it finishes or fails."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[rate]}", markup=False),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                            disable=not sys.stderr.isatty())
        self.task = self.docs = None

    def documents(self, total: int) -> None:
        """Start the documents bar."""
        self.docs = self.bar.add_task("documents", total=total, rate="")

    def start(self, total: int, done: int) -> None:
        """A document's sections join the sections bar: ``total``, of which ``done`` were
        written by an earlier run (documents join as their plans are ready)."""
        if self.task is None:
            self.task = self.bar.add_task("sections", total=total, completed=done, rate="")
            return
        current = self.bar.tasks[self.task]
        self.bar.update(self.task, total=(current.total or 0) + total, completed=current.completed + done)

    def section(self, result) -> None:
        self.bar.advance(self.task)

    def batch(self, stats) -> None:
        """The engine's last step: on the sections bar, or on the documents bar while planning."""
        rate = stats.completion_tokens / stats.seconds if stats.seconds else 0.0
        self.bar.update(self.task if self.task is not None else self.docs, rate=f"batch {stats.size}, {rate:.0f} tok/s")

    def document(self, outcome) -> None:
        """One document finished, failed or was refused: one line, and the documents bar."""
        self.bar.advance(self.docs)
        if outcome.status == "done":
            line = _line("done", "green", f"{outcome.name}: {outcome.words}/{outcome.required_words} words "
                         f"(length score {outcome.length_score}) -> {outcome.directory}")
        else:
            where = f"{outcome.name}: " if outcome.name else ""
            line = _line("failed" if outcome.status == "failed" else "refused", "bold red", where + outcome.error)
        _say(self.bar.console, line)


def scores_table(rows, worst: int) -> None:
    """Print the ``worst`` sections by quality (none when ``worst`` <= 0), with every score
    and the problems found, on stdout."""
    chosen = sorted(rows, key=lambda r: r[2].quality())[: max(worst, 0)]
    if not chosen:
        return
    table = Table(title="Sections, worst first")
    grounded = any(r[2].grounding is not None for r in chosen)  # a column only for a run with sources
    for col in ("section", "topic", "brief", "redund.", "shared 4g", "repet.", "length",
                *(("grounded",) if grounded else ()), "problems"):
        table.add_column(col)
    for sid, title, s in chosen:
        scores = (s.topic_relevance, s.brief_relevance, s.redundancy, s.shared_ngrams, s.repetition, s.length_ratio)
        ground = (Text("-" if s.grounding is None else f"{s.grounding:.2f}"),) if grounded else ()
        labels = [f"{p} ({s.closest})" if p == "retold" and s.closest else p for p in s.problems]
        problems = Text("\n".join(printable(p, True) for p in labels)) if labels else Text("ok", style="green")
        table.add_row(Text.assemble(printable(sid, True), "\n", (printable(title, True), "dim")),
                      *(Text(f"{v:.2f}") for v in scores), *ground,
                      problems)
    (out or Console()).print(table)
