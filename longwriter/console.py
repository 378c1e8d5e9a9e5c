"""Terminal output (the only module that imports rich): live progress while writing, and the
checker's table of the worst sections."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

err = Console(stderr=True)


class RichProgress:
    """Sections done / total, tokens per second of the last batch, and the current stage."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err,
                            disable=not sys.stderr.isatty())
        self.task = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def stage(self, text: str) -> None:
        err.print(f"[dim]{text}...[/dim]")

    def start(self, total: int, done: int) -> None:
        if done:
            err.print(f"[dim]{done} of {total} sections already written; resuming[/dim]")
        self.task = self.bar.add_task("sections", total=total, completed=done, rate="")

    def batch(self, stats) -> None:
        rate = stats.completion_tokens / stats.seconds if stats.seconds else 0.0
        self.bar.update(self.task, rate=f"batch {stats.size}, {rate:.0f} tok/s")

    def section(self, result) -> None:
        self.bar.advance(self.task)
        tries = f", {result.attempts} drafts" if result.attempts > 1 else ""
        self.bar.console.print(f"[green]done[/green] {result.id} ({result.words}/{result.budget} words{tries})")


def error(message: str) -> None:
    """A one-line error on stderr."""
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)


def info(message: str) -> None:
    err.print(message, highlight=False, soft_wrap=True)


def scores_table(rows, worst: int) -> None:
    """Print the ``worst`` sections by quality, with every score and the problems found."""
    table = Table(title="Sections, worst first")
    for col in ("section", "topic", "brief", "redund.", "shared 4g", "repet.", "length", "problems"):
        table.add_column(col)
    for sid, title, s in sorted(rows, key=lambda r: r[2].quality())[:worst]:
        table.add_row(f"{sid}\n[dim]{title}[/dim]", f"{s.topic_relevance:.2f}", f"{s.brief_relevance:.2f}",
                      f"{s.redundancy:.2f}", f"{s.shared_ngrams:.2f}", f"{s.repetition:.2f}",
                      f"{s.length_ratio:.2f}", "\n".join(s.problems) or "[green]ok[/green]")
    Console().print(table)
