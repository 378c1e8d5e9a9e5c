"""The thresholds file reader (`--thresholds`): mutation testing showed no test covered its UTF-8
refusal, its lenient number parsing or its 64 KiB read limit. No embedding model needed."""

from __future__ import annotations


from longwriter.checker import load_thresholds


def test_quoted_numbers_are_accepted(tmp_path):
    """load_thresholds(): a hand-written '0.5' in quotes is read as the number (lax, not strict)."""
    path = tmp_path / "t.yaml"
    path.write_text('max_repetition: "0.5"\n')
    assert load_thresholds(str(path)).max_repetition == 0.5


