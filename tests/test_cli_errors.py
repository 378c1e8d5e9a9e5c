"""Every bad input: a one-line message and its own exit code, never a traceback. These fail
before any model is loaded."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from longwriter.cli import main
from longwriter.outline import dump_outline
from longwriter.store import RunDir

from .conftest import make_outline

GOOD = dump_outline(make_outline(2, 2, 800))


def run(args):
    result = CliRunner().invoke(main, args)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    return result.exit_code, lines, result


def assert_one_line_error(code, lines, result, expected_code, fragment):
    assert code == expected_code, (code, result.output, result.exception)
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], lines
    assert "Traceback" not in result.output


@pytest.mark.parametrize("text, fragment", [
    ("title: [unclosed\n", "malformed YAML at line"),
    (GOOD.replace("audience:", "colour: red\naudience:"), "document, field 'colour': unknown field"),
    (GOOD.replace("id: c1s2", "id: c1s1"), "field 'id': duplicate id"),
    (GOOD.replace("  - id: c1s2\n", "  - id: c1s2\n    depends_on: [c2s1]\n").replace(
        "  - id: c2s1\n", "  - id: c2s1\n    depends_on: [c1s2]\n"), "dependency cycle"),
    (GOOD.replace("  - id: c1s2\n", "  - id: c1s2\n    depends_on: [nowhere]\n"), "unknown section 'nowhere'"),
    (GOOD.replace("words: 200", "words: -3", 1), "field 'words': Input should be greater than 0"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_bad_outline_files(tmp_path, text, fragment):
    path = tmp_path / "outline.yaml"
    path.write_text(text, encoding="utf-8")
    assert_one_line_error(*run(["expand", str(path), "--out", str(tmp_path / "out")]), 3, fragment)


def test_non_utf8_outline(tmp_path):
    path = tmp_path / "outline.yaml"
    path.write_bytes(GOOD.encode("utf-16"))
    assert_one_line_error(*run(["expand", str(path), "--out", str(tmp_path / "o")]), 3, "not UTF-8")


def test_missing_outline_file(tmp_path):
    assert_one_line_error(*run(["expand", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]), 3,
                          "no such file")


@pytest.mark.parametrize("topic, fragment", [("   ", "the topic is empty"), ("x" * 3000, "characters long")])
def test_bad_topics(tmp_path, topic, fragment):
    assert_one_line_error(*run(["draft", "--topic", topic, "--out", str(tmp_path / "o")]), 5, fragment)
    assert_one_line_error(*run(["plan", "--topic", topic, "-o", str(tmp_path / "o.yaml")]), 5, fragment)


def test_unknown_model_path_and_id(tmp_path):
    assert_one_line_error(*run(["plan", "--topic", "coffee", "--model", str(tmp_path / "nomodel"),
                                "-o", str(tmp_path / "o.yaml")]), 4, "no such directory")
    assert_one_line_error(*run(["plan", "--topic", "coffee", "--model", "no-such-org/no-such-model",
                                "-o", str(tmp_path / "o.yaml")]), 4, "no-such-org/no-such-model")


def test_unreadable_prompts_dir(tmp_path):
    outline = tmp_path / "o.yaml"
    outline.write_text(GOOD)
    assert_one_line_error(*run(["expand", str(outline), "--out", str(tmp_path / "o"), "--prompts-dir",
                                str(tmp_path / "noprompts")]), 7, "prompts directory")


def test_output_dir_that_is_a_file(tmp_path):
    outline = tmp_path / "o.yaml"
    outline.write_text(GOOD)
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(*run(["expand", str(outline), "--out", str(tmp_path / "afile")]), 6, "is a file")


def test_locked_output_dir(tmp_path):
    outline = tmp_path / "o.yaml"
    outline.write_text(GOOD)
    with RunDir(tmp_path / "out"):
        assert_one_line_error(*run(["expand", str(outline), "--out", str(tmp_path / "out")]), 8,
                              "in use by another longwriter run")


def test_check_on_a_directory_that_is_no_run(tmp_path):
    assert_one_line_error(*run(["check", str(tmp_path)]), 6, "not a longwriter run directory")


def test_real_process_prints_no_traceback(tmp_path):
    """Through a real process, as a user sees it: stderr is exactly one line."""
    path = tmp_path / "bad.yaml"
    path.write_text("title: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "longwriter", "expand", str(path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 3
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error:")


def test_help_is_instant_and_lists_commands():
    proc = subprocess.run([sys.executable, "-c", "import sys; from longwriter.cli import main\n"
                           "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
                           "print('torch' in sys.modules, 'transformers' in sys.modules)"],
                          capture_output=True, text=True)
    assert "draft" in proc.stdout and "expand" in proc.stdout
    assert proc.stdout.strip().endswith("False False")


def test_bad_thresholds_file(tmp_path):
    outline = tmp_path / "o.yaml"
    outline.write_text(GOOD)
    bad = tmp_path / "t.yaml"
    bad.write_text("min_topic_relevance: 0.3\nmax_fun: 1\n")
    assert_one_line_error(*run(["expand", str(outline), "--out", str(tmp_path / "o"), "--thresholds", str(bad)]),
                          5, "field 'max_fun': Extra inputs are not permitted")
    assert_one_line_error(*run(["check", str(tmp_path), "--thresholds", str(tmp_path / "none.yaml")]), 6,
                          "not a longwriter run directory")
    (tmp_path / "outline.yaml").write_text(GOOD)
    assert_one_line_error(*run(["check", str(tmp_path), "--thresholds", str(tmp_path / "none.yaml")]), 5,
                          "no such file")
