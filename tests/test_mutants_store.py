"""Run-directory details that mutation testing showed no test pinned down: the default folder of
a topic without Latin letters, and warnings of a read-only run reaching the caller."""

from __future__ import annotations

from longwriter.pipeline import expand
from longwriter.store import RunDir, default_out, digest, section_name
from longwriter.writer import WriterSettings

from .conftest import make_outline


def test_a_topic_without_latin_letters_gets_document_plus_a_hash():
    """default_out(): '咖啡的历史' -> 'document-' + 8 hex digits of the topic's hash."""
    assert default_out("咖啡的历史") == "document-" + digest("咖啡的历史")[:8]
    assert default_out("Café au lait") == "caf-au-lait-" + digest("Café au lait")[:8]


def test_a_read_only_run_reports_hand_edits_to_its_notify(tmp_path, fake):
    """RunDir.read_only(): the notify given is the one used while reading sections."""
    outline = make_outline(2, 1, 400)
    expand(outline, tmp_path, backend=fake, settings=WriterSettings(check=False))
    path = tmp_path / section_name("c2")
    path.write_text(path.read_text() + " My own ending.")
    notes: list[str] = []
    finished = RunDir.read_only(tmp_path, notes.append).finished(outline)
    assert set(finished) == {"c1", "c2"} and finished["c2"].text.endswith("My own ending.")
    assert any("was edited by hand" in n for n in notes)
