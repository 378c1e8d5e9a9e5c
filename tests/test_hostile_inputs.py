"""The second adversarial pass's classes: special files where run files belong, temporary-file
names a user might also use, colliding file names, paths the system refuses to look up,
undecodable or absurd text, terminal control characters, usage errors. Each class gets one
line and its own exit code, and never a hang, a traceback or a lost file."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

import longwriter.pipeline as pipeline
from longwriter.cli import main
from longwriter.console import printable
from longwriter.defaults import DEVICE
from longwriter.errors import ModelError, OutlineError, OutputError
from longwriter.files import NotRegularFile, TooLarge, read_regular
from longwriter.length import parse_length
from longwriter.outline import dump_outline, load_outline, parse_outline, same_topic
from longwriter.pipeline import expand
from longwriter.store import TEMP_PREFIX, RunDir, section_name

from .conftest import TOPIC, make_outline
from .test_reliability import NO_CHECK, Recorder, cli, snapshot

LONG = "x" * 300  # one path component over the 255-byte limit of every common file system


def finished_run(tmp_path: Path, fake) -> Path:
    out = tmp_path / "run"
    expand(make_outline(), out, backend=fake, settings=NO_CHECK)
    return out


def within(seconds: int, fn):
    """Run ``fn``, failing (instead of hanging the suite) if it has not returned in time: an
    alarm interrupts a blocked open of a FIFO or an endless read."""
    def expired(signum, frame):
        raise TimeoutError("hung (reading a FIFO or an endless file?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- special files in a run


def test_read_regular_refuses_fifo_device_directory_and_large_files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "big").write_bytes(b"x" * 101)
    (tmp_path / "zero").symlink_to("/dev/zero")
    for path in (fifo, tmp_path / "zero", tmp_path):
        with pytest.raises(NotRegularFile):
            within(5, lambda p=path: read_regular(p, 100))
    with pytest.raises(TooLarge):
        read_regular(tmp_path / "big", 100)
    assert read_regular(tmp_path / "big", 101) == b"x" * 101


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_special_section_file_is_rewritten_and_moved_aside_never_read(tmp_path, fake, kind):
    out = finished_run(tmp_path, fake)
    target = out / section_name("c1s1")
    target.unlink()
    os.mkfifo(target) if kind == "fifo" else target.symlink_to("/dev/zero")
    recorder = Recorder()
    within(60, lambda: expand(make_outline(), out, backend=fake, settings=NO_CHECK, progress=recorder))
    assert target.is_file() and not target.is_symlink() and target.read_text().strip()
    assert any("not a regular file" in w for w in recorder.warnings), recorder.warnings
    assert (out / f"sections/{target.name}.~1~").exists() or (out / f"sections/{target.name}.~1~").is_symlink()


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_special_state_file_is_one_line_exit_6(tmp_path, fake, monkeypatch, kind):
    out = finished_run(tmp_path, fake)
    (out / "state.json").unlink()
    os.mkfifo(out / "state.json") if kind == "fifo" else (out / "state.json").symlink_to("/dev/zero")
    before = sorted(p.name for p in (out / "sections").iterdir())
    for args in (["check", str(out)], ["expand", str(out / "outline.yaml"), "--out", str(out), "--no-check"]):
        code, errors, result = within(60, lambda a=args: cli(a, fake, monkeypatch))
        assert code == 6 and len(errors) == 1, result.output
    assert sorted(p.name for p in (out / "sections").iterdir()) == before


def test_state_nested_beyond_recursion_limit_counts_as_damaged(tmp_path, fake):
    out = finished_run(tmp_path, fake)
    (out / "state.json").write_text("[" * 200_000 + "]" * 200_000)
    recorder = Recorder()
    result = expand(make_outline(), out, backend=fake, settings=NO_CHECK, progress=recorder)
    assert any("damaged" in w for w in recorder.warnings) and result.report.sections


def test_oversized_state_counts_as_damaged(tmp_path, fake, monkeypatch):
    out = finished_run(tmp_path, fake)
    monkeypatch.setattr("longwriter.store.MAX_STATE_BYTES", 10)
    recorder = Recorder()
    expand(make_outline(), out, backend=fake, settings=NO_CHECK, progress=recorder)
    assert any("damaged" in w for w in recorder.warnings)


# ---------------------------------------------------------------- temporary-file names


def test_user_dotfiles_that_look_like_backups_survive_cleanup(tmp_path, fake):
    out = finished_run(tmp_path, fake)
    mine = {out / ".document.md.original": "my copy", out / "sections" / ".notes.md.backup01": "notes",
            out / ".state.json.abcdefgh": "x", out / "sections" / ".c1s1.md.12345678": "y"}
    for path, text in mine.items():
        path.write_text(text)
    (out / "sections" / f"{TEMP_PREFIX}c1s1.md.abcd1234").write_text("half-written")
    (out / f"{TEMP_PREFIX}state.json.abcd1234").write_text("half")
    expand(make_outline(), out, backend=fake, settings=NO_CHECK)
    assert all(path.read_text() == text for path, text in mine.items())
    leftovers = [p for p in out.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    assert not leftovers


def test_a_killed_first_run_s_temporary_file_does_not_make_the_folder_a_stranger(tmp_path, fake):
    out = tmp_path / "run"
    out.mkdir()
    (out / f"{TEMP_PREFIX}state.json.abcd1234").write_text("half")  # killed before state.json existed
    expand(make_outline(), out, backend=fake, settings=NO_CHECK)
    assert (out / "document.md").is_file() and not list(out.glob(f"{TEMP_PREFIX}*"))


# ---------------------------------------------------------------- colliding section files


def test_ids_whose_file_names_could_collide_get_distinct_files(tmp_path, fake):
    other = section_name("Intro")  # e.g. sections/intro_1a2b3c4d.md
    lookalike = Path(other).stem.replace("_", "-")
    ids = ["Intro", lookalike, "intro", "INTRO", "intro-"]
    assert len({section_name(i) for i in ids}) == len(ids)
    outline = parse_outline({"title": "T", "topic": TOPIC, "words": 600, "sections": [
        {"id": i, "title": f"Part {n}", "words": 120} for n, i in enumerate(ids)]})
    out = tmp_path / "run"
    expand(outline, out, backend=fake, settings=NO_CHECK)
    assert len(list((out / "sections").glob("*.md"))) == len(ids)


# ---------------------------------------------------------------- paths the OS refuses


@pytest.mark.parametrize("args,code", [
    (["draft", "--topic", TOPIC, "--out", LONG], 6),
    (["draft", "--topic", TOPIC, "--out", f"{LONG}/sub"], 6),
    (["draft", "--topic", TOPIC, "--out", ""], 6),
    (["draft", "--topic", TOPIC, "--out", "  "], 6),
    (["check", LONG], 6),
    (["check", ""], 6),
    (["plan", "--topic", TOPIC, "-o", LONG], 6),
    (["plan", "--topic", TOPIC, "-o", ""], 6),
    (["expand", LONG, "--out", "x"], 3),
    (["expand", "", "--out", "x"], 3),
    (["draft", "--topic", TOPIC, "--prompts-dir", LONG], 7),
    (["draft", "--topic", TOPIC, "--thresholds", LONG], 5),
    (["draft", "--topic", TOPIC, "--model", LONG], 4),
    (["draft", "--topic", TOPIC, "--model", ""], 4),
])
def test_paths_the_system_refuses_are_one_line_with_their_exit_code(tmp_path, args, code, fake, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got, errors, result = cli(args, fake, monkeypatch)
    assert got == code and len(errors) == 1 and isinstance(result.exception, SystemExit), result.output
    assert not fake.requests and sorted(os.listdir(tmp_path)) == []


def test_directories_where_files_belong_get_their_commands_exit_code(tmp_path, fake, monkeypatch):
    (tmp_path / "dir").mkdir()
    code, errors, _ = cli(["expand", str(tmp_path / "dir"), "--out", str(tmp_path / "o")], fake, monkeypatch)
    assert code == 3 and len(errors) == 1 and "directory" in errors[0]
    (tmp_path / "file").write_text("x")
    code, errors, _ = cli(["check", str(tmp_path / "file")], fake, monkeypatch)
    assert code == 6 and len(errors) == 1


@pytest.mark.parametrize("name", [" ", "org/model name", "a" * 300, "../" + "b" * 300, "org//x"])
def test_model_names_that_are_neither_folders_nor_hub_ids_are_model_errors(name):
    from longwriter.backends.transformers_backend import resolve_model

    with pytest.raises(ModelError) as err:
        resolve_model(name)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- text that is not text


@pytest.mark.parametrize("topic", ["caf\udce9 history", "a\x1b[2J history", "a\x00b", "x\x7fy"])
def test_topics_with_undecodable_bytes_or_control_characters_exit_5(topic, fake, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, errors, result = cli(["draft", "--topic", topic], fake, monkeypatch)
    assert code == 5 and len(errors) == 1, result.output
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("topic", ["a " + "9" * 500 + " words essay", "9" * 400 + "字的文章", "a 10,000,000,000,000,000,000,000 words essay"])
def test_absurd_lengths_in_the_topic_are_refused_not_overflowed(topic, fake, monkeypatch, tmp_path):
    assert parse_length(topic) is None or parse_length(topic) >= 10**6
    monkeypatch.chdir(tmp_path)
    code, errors, result = cli(["plan", "--topic", topic], fake, monkeypatch)
    assert code == 5 and len(errors) == 1, result.output


def test_same_topic_ignores_spacing_and_unicode_form_only():
    assert same_topic("The  history\nof coffee", " The history of coffee ")
    assert same_topic("café", "cafe\u0301")  # NFC and NFD spellings
    assert not same_topic("The history of coffee", "The history of tea")
    assert not same_topic("Coffee", "coffee")


def test_a_user_outline_whose_topic_differs_in_spacing_only_is_the_same_job(tmp_path, fake):
    out = tmp_path / "run"
    out.mkdir()
    (out / "outline.yaml").write_text(dump_outline(make_outline()).replace(f"topic: {TOPIC}", f"topic: '  {TOPIC}  '"))
    assert load_outline(out / "outline.yaml").topic != TOPIC
    result = pipeline.draft(TOPIC.replace(" ", "  "), out, backend=fake, settings=NO_CHECK)
    assert result.report.sections


# ---------------------------------------------------------------- the terminal


def test_control_characters_in_user_text_never_reach_the_terminal(tmp_path, fake, monkeypatch):
    evil = tmp_path / "a\x1b]0;pwned\x07b\rc"
    code, errors, result = cli(["check", str(evil)], fake, monkeypatch)
    assert code == 6 and len(errors) == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr and "\r" not in result.stderr
    assert "\\x1b" in errors[0]
    assert printable("one\ntwo", one_line=True) == "one two" and printable("bell\x07 tab\t") == "bell\\x07 tab\t"


@pytest.mark.parametrize("args", [["draft"], ["draft", "--topic"], ["draft", "--topic", "x", "--bogus"],
                                  ["nonsense"], ["expand"], ["draft", "--topic", "x", "--words", "ten"]])
def test_usage_errors_are_one_error_line_and_exit_2(args, capfd):
    with pytest.raises(SystemExit) as exit_:
        main.main(args, prog_name="longwriter")
    lines = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert exit_.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines


def test_help_and_version_still_exit_0(capfd):
    for args in (["--help"], ["draft", "--help"], ["--version"]):
        with pytest.raises(SystemExit) as exit_:
            main.main(args, prog_name="longwriter")
        assert exit_.value.code == 0
    assert "Usage" in capfd.readouterr().out


@pytest.mark.parametrize("device,ok", [("cpu", True), ("cuda:1", True), ("cpu\n", False), ("cuda:١", False),
                                       ("cuda:1\n", False), (" cpu", False)])
def test_device_pattern_is_anchored_and_ascii(device, ok):
    assert bool(DEVICE.match(device)) is ok


# ---------------------------------------------------------------- failures before any section


def test_a_template_failing_at_render_time_leaves_no_folder(tmp_path, fake, monkeypatch):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "section.j2").write_text("{{ 1 / 0 }}")
    outline = tmp_path / "o.yaml"
    outline.write_text(dump_outline(make_outline()))
    out = tmp_path / "new" / "run"
    code, errors, result = cli(["expand", str(outline), "--out", str(out), "--prompts-dir", str(prompts),
                                "--no-check"], fake, monkeypatch)
    assert code == 7 and len(errors) == 1, result.output
    assert not (tmp_path / "new").exists()


def test_a_failed_resume_keeps_everything_it_found(tmp_path, fake, monkeypatch):
    out = finished_run(tmp_path, fake)
    state = json.loads((out / "state.json").read_text())
    state["sections"] = {}
    (out / "state.json").write_text(json.dumps(state))  # a run that finished nothing yet
    before = snapshot(out)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "section.j2").write_text("{{ 1 / 0 }}")
    code, _, _ = cli(["expand", str(out / "outline.yaml"), "--out", str(out), "--prompts-dir", str(prompts),
                      "--no-check"], fake, monkeypatch)
    assert code == 7
    after = snapshot(out)
    sections = {k: v for k, v in before.items() if k.startswith("sections/")}
    assert {k: v for k, v in after.items() if k.startswith("sections/")} == sections and sections
    assert set(before) <= set(after)


def test_empty_output_path_in_the_api_is_refused():
    with pytest.raises(OutputError):
        RunDir("")
    with pytest.raises(OutlineError):
        load_outline("")


def test_model_flags_reach_the_loader(tmp_path, fake, monkeypatch):
    """--model, --device, --batch-size, --engine, --dtype and --trust-remote-code all reach load_backend."""
    seen = {}

    def loader(name, **kwargs):
        seen.update(kwargs, name=name)
        return fake

    monkeypatch.setattr(pipeline, "load_backend", loader)
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["draft", "--topic", TOPIC, "--out", str(tmp_path / "o"), "--no-check",
                                       "--device", "cpu", "--batch-size", "3", "--engine", "padded",
                                       "--dtype", "bfloat16", "--trust-remote-code", "--words", "300"])
    assert result.exit_code == 0, result.output
    assert seen == {"name": None, "device": "cpu", "batch_size": 3, "engine": "padded", "dtype": "bfloat16",
                    "trust_remote_code": True}
    for flag, value in (("--engine", "warp"), ("--dtype", "int8")):
        code, errors, _ = cli(["draft", "--topic", TOPIC, flag, value], fake, monkeypatch)
        assert code == 2 and len(errors) == 1


def test_a_start_refused_by_the_preflight_keeps_the_run_resumable(tmp_path, fake, monkeypatch):
    """A run refused after taking the lock (report.json a directory) must not remove state.json."""
    out = finished_run(tmp_path, fake)
    before = snapshot(out)
    (out / "report.json").unlink()
    (out / "report.json").mkdir()
    code, errors, _ = cli(["expand", str(out / "outline.yaml"), "--out", str(out), "--no-check"], fake, monkeypatch)
    assert code == 6 and len(errors) == 1
    assert (out / "state.json").read_bytes() == before["state.json"]
    (out / "report.json").rmdir()
    requests = len(fake.requests)
    result = expand(make_outline(), out, backend=fake, settings=NO_CHECK)
    assert result.report.resumed_sections == len(result.report.sections) and len(fake.requests) == requests


def test_bare_longwriter_prints_its_help(capfd):
    with pytest.raises(SystemExit) as exit_:
        main.main([], prog_name="longwriter")
    assert exit_.value.code == 0 and "Commands:" in capfd.readouterr().out
