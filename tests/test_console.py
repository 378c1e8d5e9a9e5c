"""Terminal output prints user text exactly as given: never as rich markup, never wrapped
into several lines."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from longwriter import console

# Markup rich would interpret (or choke on), emoji codes, wide characters.
TRICKY = [
    "cannot read '[/x]'",
    "[bold]x[/bold]",
    "[red",
    "\\[escaped] and \\",
    "[link=http://example.com]click[/link]",
    ":smile: :thumbs_up: 🙂",
    "标题：咖啡的历史 [草稿]",
    "[/]",
    "a" * 200,
]


def capture(monkeypatch, *, width: int = 40, terminal: bool = False) -> io.StringIO:
    """Send the module's stderr console (and the table's stdout console) to a buffer."""
    buffer = io.StringIO()
    fake = Console(file=buffer, width=width, force_terminal=terminal, color_system="truecolor" if terminal else None)
    monkeypatch.setattr(console, "err", fake)
    monkeypatch.setattr(console, "out", fake)
    return buffer


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


@pytest.mark.parametrize("text", TRICKY)
def test_error_is_one_literal_line(monkeypatch, text):
    buffer = capture(monkeypatch)
    console.error(text)
    assert lines(buffer) == [f"error: {text}"]


@pytest.mark.parametrize("text", TRICKY)
def test_warn_is_one_literal_line(monkeypatch, text):
    buffer = capture(monkeypatch)
    console.warn(text)
    assert lines(buffer) == [f"warning: {text}"]


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("style", [None, "dim", "bold red"])
def test_info_is_literal_whatever_the_style(monkeypatch, text, style):
    buffer = capture(monkeypatch)
    console.info(text, style=style)
    assert lines(buffer) == [text]


def test_prefixes_keep_their_styles(monkeypatch):
    buffer = capture(monkeypatch, terminal=True)
    console.error("[x]")
    console.warn("[y]")
    console.info("[z]", style="dim")
    text = buffer.getvalue()
    assert "\x1b[1;31merror:\x1b[0m [x]" in text  # bold red prefix, plain message
    assert "\x1b[33mwarning:\x1b[0m [y]" in text
    assert "\x1b[2m[z]\x1b[0m" in text


def test_error_accepts_any_object(monkeypatch):
    buffer = capture(monkeypatch)
    console.error(ValueError("[bad] value"))
    assert lines(buffer) == ["error: [bad] value"]


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=80))
def test_any_printable_message_is_one_exact_line(text):
    buffer = io.StringIO()
    saved, console.err = console.err, Console(file=buffer, width=20)
    try:
        console.error(text)
    finally:
        console.err = saved
    assert buffer.getvalue() == f"error: {text}\n"


# The console reads these objects by attribute only; stand-ins keep these tests independent
# of where the pipeline defines them.
def result(section_id: str, attempts: int = 1):
    return SimpleNamespace(id=section_id, words=120, budget=150, attempts=attempts)


def stats(size: int, tokens: int, seconds: float):
    return SimpleNamespace(size=size, completion_tokens=tokens, seconds=seconds)


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_prints_ids_and_stages_literally(monkeypatch, terminal):
    buffer = capture(monkeypatch, width=200, terminal=terminal)
    with console.RichProgress() as progress:
        progress.bar.disable = not terminal  # a live bar only when "on a terminal"
        progress.stage("[bold]planning[/bold]")
        progress.start(total=3, done=1)
        progress.batch(stats(2, 400, 2.0))
        progress.batch(stats(1, 0, 0.0))
        progress.section(result("[red", attempts=2))
        progress.section(result("c1[/x]"))
        progress.warn("section '[/x]' is short :smile:")
    text = buffer.getvalue()
    for expected in ("[bold]planning[/bold]...", "1 of 3 sections already written; resuming",
                     "done [red (120/150 words, 2 drafts)", "done c1[/x] (120/150 words)",
                     "warning: section '[/x]' is short :smile:"):
        assert expected in text or expected in _plain(text), expected


def _plain(text: str) -> str:
    """``text`` without ANSI escape sequences."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


class scores(SimpleNamespace):  # noqa: N801 - a stand-in for checker.Scores
    def __init__(self, quality: float, problems: list[str]) -> None:
        super().__init__(topic_relevance=quality, brief_relevance=0.5, redundancy=0.1, shared_ngrams=0.0,
                         repetition=0.0, length_ratio=1.0, grounding=None, problems=problems)

    def quality(self) -> float:
        return self.topic_relevance


ROWS = [
    ("c1[/x]", "[bold]Loud title[/bold]", scores(0.9, [])),
    ("c2", "咖啡 [red", scores(0.1, ["off topic: [green]no[/green]", "too short"])),
    ("c3", ":smile: title", scores(0.5, ["\\[weird]"])),
]


def test_scores_table_cells_are_literal(monkeypatch):
    buffer = capture(monkeypatch, width=200)
    console.scores_table(ROWS, 10)
    text = buffer.getvalue()
    for cell in ("c1[/x]", "[bold]Loud title[/bold]", "咖啡 [red", "off topic: [green]no[/green]", "too short",
                 ":smile: title", "\\[weird]", "ok"):
        assert cell in text, cell
    assert text.index("c2") < text.index("c3") < text.index("c1[/x]")  # worst first


def test_scores_table_shows_only_the_worst(monkeypatch):
    buffer = capture(monkeypatch, width=200)
    console.scores_table(ROWS, 1)
    assert "c2" in buffer.getvalue() and "c1" not in buffer.getvalue() and "c3" not in buffer.getvalue()


@pytest.mark.parametrize("worst", [0, -1, -100])
def test_scores_table_with_no_rows_asked(monkeypatch, worst):
    buffer = capture(monkeypatch, width=200)
    console.scores_table(ROWS, worst)
    assert buffer.getvalue() == ""


def test_scores_table_without_rows(monkeypatch):
    buffer = capture(monkeypatch, width=200)
    console.scores_table([], 10)
    assert buffer.getvalue() == ""


def test_scores_table_defaults_to_stdout(capsys):
    console.scores_table([("c9", "[b]x[/b]", scores(0.5, ["[i]"]))], 5)
    printed = capsys.readouterr().out
    assert "[b]x[/b]" in printed and "[i]" in printed
