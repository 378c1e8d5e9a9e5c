"""Never clobber or silently redo the user's work; every bad input or output failure is one
line with its own exit code. Each test names the class of failure it guards."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import longwriter.pipeline as pipeline
import longwriter.store as store
from longwriter.backends.fake import ScriptedBackend
from longwriter.cli import main
from longwriter.errors import Interrupted, LockedError, ModelError, OutputError
from longwriter.outline import dump_outline, load_outline, parse_outline
from longwriter.pipeline import RunControl, Silent, draft, expand
from longwriter.store import RunDir, default_out, section_name
from longwriter.writer import WriterSettings

from .conftest import TOPIC, make_outline, smart_responder

NO_CHECK = WriterSettings(check=False)


class Recorder(Silent):
    """Progress that keeps warnings (what the user would see) for assertions."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(args, fake=None, monkeypatch=None):
    """Run the CLI in-process; ``fake`` stands in for the model the command would load."""
    if fake is not None:
        monkeypatch.setattr(pipeline, "load_backend", lambda *a, **k: fake)
    result = CliRunner().invoke(main, args)
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    return result.exit_code, errors, result


def drafts_written(backend) -> set[str]:
    """Section ids the backend was asked to draft (first drafts and rewrites)."""
    import re

    found = (re.search(r'Now write section [\d.]+ "([^"]+)"', r.messages[-1].content) for r in backend.requests
             if not r.prefill)
    return {m.group(1) for m in found if m}


# ---------------------------------------------------------------- folders that are not runs


@pytest.mark.parametrize("files", [{"document.md": "my essay"}, {"sections/x.md": "mine"}, {"notes.txt": "n"},
                                   {".hidden": ""}, {"sub/deeper/file": "x"}])
def test_non_empty_folder_that_is_no_run_is_refused_untouched(tmp_path, files, fake, monkeypatch):
    out = tmp_path / "out"
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    before = snapshot(out)
    outline = tmp_path / "o.yaml"
    outline.write_text(dump_outline(make_outline()))
    for args in (["expand", str(outline), "--out", str(out), "--no-check"],
                 ["draft", "--topic", TOPIC, "--out", str(out), "--no-check"]):
        code, errors, result = cli(args, fake, monkeypatch)
        assert code == 6 and len(errors) == 1 and "holds no longwriter run" in errors[0], result.output
    assert snapshot(out) == before and not fake.requests


def test_expand_of_the_outline_inside_the_output_folder_keeps_the_users_file(tmp_path, fake):
    path = tmp_path / "outline.yaml"
    text = "# my notes: keep this comment\n" + dump_outline(make_outline()).replace("words: 800", "words: 800  # mine")
    path.write_text(text)
    expand(path, tmp_path, backend=fake, settings=NO_CHECK)
    assert path.read_text() == text
    assert (tmp_path / "document.md").exists()
    expand(path, tmp_path, backend=fake, settings=NO_CHECK)  # a re-run resumes and still keeps it
    assert path.read_text() == text


def test_draft_uses_a_hand_made_outline_in_the_folder_instead_of_planning(tmp_path, fake):
    outline = make_outline().model_copy(update={"title": "My own title"})
    text = "# hand-edited\n" + dump_outline(outline)
    (tmp_path / "outline.yaml").write_text(text)
    result = draft(TOPIC, tmp_path, backend=fake, settings=NO_CHECK)
    assert result.outline.title == "My own title"
    assert not any(r.prefill.endswith(".") for r in fake.requests)  # no numbered-list planning request
    assert (tmp_path / "outline.yaml").read_text() == text


def test_draft_refuses_an_outline_about_another_topic(tmp_path, fake):
    (tmp_path / "outline.yaml").write_text(dump_outline(make_outline()))
    with pytest.raises(OutputError, match="not this topic"):
        draft("Tea in China", tmp_path, backend=fake, settings=NO_CHECK)
    assert not fake.requests


def test_a_run_for_another_topic_is_not_resumed(tmp_path, fake):
    draft("咖啡的历史", tmp_path, backend=fake, settings=NO_CHECK, words=400)
    before = snapshot(tmp_path)
    fake.batches.clear()
    with pytest.raises(OutputError, match="another topic"):
        draft("茶的历史", tmp_path, backend=fake, settings=NO_CHECK, words=400)
    assert snapshot(tmp_path) == before and not fake.requests


@pytest.mark.parametrize("a, b", [("咖啡的历史", "茶的历史"), ("تاريخ القهوة", "تاريخ الشاي"), ("☕", "🍵"),
                                  ("Café culture", "Cafe culture")])
def test_default_folders_differ_per_topic(a, b):
    assert default_out(a) != default_out(b)
    assert default_out(a) == default_out(a)  # the same command resumes the same folder
    assert "/" not in default_out(a) and default_out(a) not in ("", ".", "..")


def test_default_folder_of_a_plain_english_topic_is_its_slug():
    assert default_out("The history of coffee") == "the-history-of-coffee"


# ---------------------------------------------------------------- files named by id


def test_sections_are_files_named_by_id_and_a_reorder_rewrites_nothing(tmp_path, fake):
    outline = make_outline(2, 3, 1200)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    before = snapshot(tmp_path / "sections")
    assert set(before) == {Path(section_name(leaf.id)).name for leaf in outline.leaves()}
    data = outline.model_dump()
    kids = data["sections"][0]["children"]
    kids.reverse()
    data["sections"].reverse()
    fake.batches.clear()
    expand(parse_outline(data), tmp_path, backend=fake, settings=NO_CHECK)
    assert drafts_written(fake) == set()
    assert snapshot(tmp_path / "sections") == before


def test_ids_that_slug_alike_get_distinct_files():
    names = {section_name(i) for i in ["a.b", "a-b", "A-B", "a_b", "a b", "../a-b", "a-b/", "ａ-ｂ"]}
    assert len(names) == 8
    assert all(n.startswith("sections/") and "/" not in n[len("sections/"):] for n in names)


# ---------------------------------------------------------------- Ctrl-C and the lock while planning


def test_ctrl_c_while_planning_stops_at_once_and_saves_nothing(tmp_path):
    control = RunControl()
    seen = []

    def responder(request):
        seen.append(request)
        if len(seen) == 2:
            control.stop()  # as the SIGINT handler does
        return smart_responder(request)

    out = tmp_path / "new" / "run"
    with pytest.raises(Interrupted, match="while planning"):
        draft(TOPIC, out, backend=ScriptedBackend(responder), settings=NO_CHECK, control=control)
    assert len(seen) <= 8  # one planning round at most, not a whole junk plan
    assert not (tmp_path / "new").exists()  # nothing saved, no empty folder left


def test_the_lock_is_taken_before_planning(tmp_path, fake):
    with RunDir(tmp_path):
        with pytest.raises(LockedError):
            draft(TOPIC, tmp_path, backend=fake, settings=NO_CHECK)
    assert not fake.requests


def test_a_stopped_run_does_not_reset_into_writing(tmp_path, fake):
    """The stop that arrives while the model loads must still stop the run."""
    control = RunControl()
    control.stop()
    with pytest.raises(Interrupted):
        draft(TOPIC, tmp_path / "run", backend=fake, settings=NO_CHECK, control=control)
    assert not fake.requests


def test_failed_model_load_leaves_no_folder(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(ModelError):
        draft(TOPIC, out, model=str(tmp_path / "no-such-model"), settings=NO_CHECK)
    assert not (tmp_path / "a").exists()


def test_failed_start_in_an_existing_empty_folder_keeps_the_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    with pytest.raises(ModelError):
        draft(TOPIC, out, model=str(tmp_path / "no-such-model"), settings=NO_CHECK)
    assert out.is_dir() and not any(p.name not in ("sections",) for p in out.iterdir())


# ---------------------------------------------------------------- damaged files and state


def test_emptied_corrupt_and_edited_sections(tmp_path, fake):
    outline = make_outline(1, 3, 600)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="independent")
    ids = [leaf.id for leaf in outline.leaves()]
    files = [tmp_path / section_name(i) for i in ids]
    files[0].write_text("")
    files[1].write_bytes(b"\xff\xfe garbage \x00")
    files[2].write_text("My own rewrite of this section, which I want to keep.")
    fake.batches.clear()
    progress = Recorder()
    result = expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="independent", progress=progress)
    assert drafts_written(fake) == {outline.find(ids[0]).title, outline.find(ids[1]).title}
    assert files[2].read_text() == "My own rewrite of this section, which I want to keep."
    assert "My own rewrite" in result.document
    assert Path(f"{files[1]}.~1~").read_bytes() == b"\xff\xfe garbage \x00"  # the damaged file is kept aside
    joined = " | ".join(progress.warnings)
    assert "is empty" in joined and "not UTF-8" in joined and "edited by hand" in joined


@pytest.mark.parametrize("state", ["[]", "null", "{", '{"sections": []}', '{"sections": {"c1s1": 5}}',
                                   '{"files": 3}', '{"sections": {"c1s1": {"words": "many"}}}', "\udcff"])
def test_damaged_state_never_crashes_expand_or_check(tmp_path, fake, state, checker):
    outline = make_outline(1, 2, 400)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    (tmp_path / "state.json").write_bytes(state.encode("utf-8", "surrogateescape"))
    result = expand(outline, tmp_path, backend=fake, settings=NO_CHECK, progress=Recorder())
    assert len(result.report.sections) == 2
    assert json.loads((tmp_path / "state.json").read_text())["sections"].keys() == {"c1s1", "c1s2"}
    (tmp_path / "state.json").write_bytes(state.encode("utf-8", "surrogateescape"))
    assert len(pipeline.rescore(tmp_path, checker=checker)) in (0, 1, 2)


def test_wrong_entry_costs_only_that_section(tmp_path, fake):
    outline = make_outline(1, 2, 400)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="independent")
    state = json.loads((tmp_path / "state.json").read_text())
    state["sections"]["c1s1"]["words"] = "many"
    (tmp_path / "state.json").write_text(json.dumps(state))
    fake.batches.clear()
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="independent", progress=Recorder())
    assert drafts_written(fake) == {"Coffee part 1.1"}


def test_removed_sections_leave_no_stale_file(tmp_path, fake):
    outline = make_outline(2, 2, 800)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    data = outline.model_dump()
    del data["sections"][1]
    smaller = parse_outline(data)
    expand(smaller, tmp_path, backend=fake, settings=NO_CHECK)
    assert set(snapshot(tmp_path / "sections")) == {Path(section_name(x.id)).name for x in smaller.leaves()}


def test_a_file_longwriter_did_not_write_is_moved_aside_not_overwritten(tmp_path, fake):
    outline = make_outline(1, 2, 400)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    (tmp_path / "document.md").write_text("my edits to the document")
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK, progress=Recorder())
    assert (tmp_path / "document.md.~1~").read_text() == "my edits to the document"
    assert (tmp_path / "document.md").read_text().startswith("# Coffee")


# ---------------------------------------------------------------- output failures


def test_document_that_is_a_directory_is_refused_before_any_work(tmp_path, fake):
    (tmp_path / "document.md").mkdir()
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / "sections").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        expand(make_outline(), tmp_path, backend=fake, settings=NO_CHECK)
    assert not fake.requests


def test_lock_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path, fake):
    victim = tmp_path / "precious.txt"
    victim.write_text("do not truncate me")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".longwriter.lock").symlink_to(victim)
    with pytest.raises(OutputError, match="not a regular file"):
        expand(make_outline(), out, backend=fake, settings=NO_CHECK)
    assert victim.read_text() == "do not truncate me"


def test_disk_full_mid_run_is_one_error_and_keeps_finished_sections(tmp_path, fake, monkeypatch):
    outline = make_outline(1, 4, 800)
    real, calls = store.atomic_write, []

    def filling(path, text):
        calls.append(path)
        if len([p for p in calls if "sections" in str(p)]) > 2 and "sections" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, text)

    monkeypatch.setattr(store, "atomic_write", filling)
    with pytest.raises(OutputError, match="No space left on device"):
        expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="serial")
    kept = snapshot(tmp_path / "sections")
    assert len(kept) == 2
    monkeypatch.setattr(store, "atomic_write", real)
    fake.batches.clear()
    result = expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="serial")
    assert result.report.resumed_sections == 2
    assert {k: v for k, v in snapshot(tmp_path / "sections").items() if k in kept} == kept


def test_disk_full_through_the_cli_is_exit_6(tmp_path, fake, monkeypatch):
    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    outline = tmp_path / "o.yaml"
    outline.write_text(dump_outline(make_outline()))
    monkeypatch.setattr(store, "atomic_write", full)
    code, errors, result = cli(["expand", str(outline), "--out", str(tmp_path / "o"), "--no-check"], fake,
                               monkeypatch)
    assert code == 6 and len(errors) == 1 and "No space left" in errors[0], result.output


# ---------------------------------------------------------------- flags and requests


@pytest.mark.parametrize("args", [
    ["--temperature", "nan"], ["--temperature", "inf"], ["--repetition-penalty", "nan"], ["--seed", str(2**64)],
    ["--seed", "-1"], ["--device", "potato"], ["--device", "cuda:x"], ["--batch-size", "0"], ["--attempts", "0"],
    ["--words", "0600000"],
])
def test_bad_flags_are_usage_errors(tmp_path, args):
    result = CliRunner().invoke(main, ["draft", "--topic", TOPIC, "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_cuda_without_a_gpu_is_a_model_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, errors, result = cli(["plan", "--topic", TOPIC, "--device", "cuda", "--model", str(tmp_path),
                                "-o", str(tmp_path / "o.yaml")])
    assert code == 4 and len(errors) == 1 and "CUDA" in errors[0], result.output


@pytest.mark.parametrize("args, fragment", [
    (["--words", "300", "--sections", "200"], "sections"), (["--language", "../../x"], "language"),
    (["--audience", "x" * 5000], "audience"),
])
def test_impossible_requests_are_input_errors(tmp_path, args, fragment):
    for command in (["draft", "--out", str(tmp_path / "o")], ["plan", "-o", str(tmp_path / "o.yaml")]):
        code, errors, result = cli([*command, "--topic", TOPIC, *args])
        assert code == 5 and len(errors) == 1 and fragment in errors[0], result.output


def test_check_worst_must_be_positive(tmp_path):
    assert CliRunner().invoke(main, ["check", str(tmp_path), "--worst", "-5"]).exit_code == 2


def test_plan_never_overwrites_an_existing_outline_without_force(tmp_path, fake, monkeypatch):
    path = tmp_path / "outline.yaml"
    path.write_text("# my edited outline\n")
    code, errors, _ = cli(["plan", "--topic", TOPIC, "-o", str(path)], fake, monkeypatch)
    assert code == 6 and "--force" in errors[0] and not fake.requests
    assert path.read_text() == "# my edited outline\n"
    code, _, result = cli(["plan", "--topic", TOPIC, "-o", str(path), "--force"], fake, monkeypatch)
    assert code == 0, result.output
    assert load_outline(path).topic == TOPIC


def test_brackets_in_user_text_are_printed_literally(tmp_path):
    code, errors, result = cli(["expand", str(tmp_path / "[/x] [bold]y.yaml"), "--out", str(tmp_path / "o")])
    assert code == 3 and len(errors) == 1 and "[/x] [bold]y.yaml" in errors[0], result.output


def test_unexpected_errors_are_one_line_with_a_crash_log(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("longwriter.pipeline.plan_request", broken)
    code, errors, result = cli(["draft", "--topic", TOPIC, "--out", str(tmp_path / "o")])
    assert code == 1 and len(errors) == 1 and "internal error (ZeroDivisionError: boom)" in errors[0]
    log = errors[0].split("details in ")[1].split(";")[0]
    assert "ZeroDivisionError" in Path(log).read_text()
    Path(log).unlink()


# ---------------------------------------------------------------- check reads only; thresholds apply


def test_check_writes_nothing_and_ignores_the_lock(tmp_path, fake, checker, monkeypatch):
    expand(make_outline(1, 2, 400), tmp_path, backend=fake, settings=NO_CHECK)
    monkeypatch.setattr(pipeline, "make_checker", lambda thresholds=None: checker)
    with RunDir(tmp_path):  # another run holds the directory: check still reads it
        before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}
        code, _, result = cli(["check", str(tmp_path)])
        after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}
    assert code == 0, result.output
    assert after == before


def test_check_applies_a_thresholds_file(tmp_path, fake):
    """The fake's sections read alike (redundancy ~0.9): the default thresholds fail one, a
    lenient file none, a strict file both."""
    expand(make_outline(1, 2, 400), tmp_path, backend=fake, settings=NO_CHECK)
    lenient, strict = tmp_path.parent / "lenient.yaml", tmp_path.parent / "strict.yaml"
    lenient.write_text("max_redundancy: 1.0\nmax_shared_ngrams: 1.0\n")
    strict.write_text("max_redundancy: 1.0\nmax_shared_ngrams: 1.0\nmin_length_ratio: 9.5\n")
    for extra, failing in (([], 1), (["--thresholds", str(lenient)], 0), (["--thresholds", str(strict)], 2)):
        result = CliRunner().invoke(main, ["check", str(tmp_path), *extra])
        assert result.exit_code == 0 and f"2 sections scored, {failing} failing" in result.stdout, result.output


@pytest.mark.parametrize("text, fragment", [("min_topic_relevance: .nan\n", "min_topic_relevance"),
                                            ("max_repetition: 7\n", "max_repetition"), ("- 1\n", "mapping"),
                                            ("max_redundancy: [1]\n", "max_redundancy"),
                                            ("min_topic_relevance: yes\n", "min_topic_relevance"),
                                            ("max_redundancy: 0.5\nmax_redundancy: 0.9\n", "duplicate key"),
                                            ("a: &a [*a]\n", "used inside the node it names")])
def test_bad_threshold_files_are_refused(tmp_path, text, fragment):
    """Bad values, and the YAML rules outlines follow (no 'yes' booleans, no duplicate keys,
    bounded aliases): one line, exit 5."""
    bad = tmp_path / "t.yaml"
    bad.write_text(text)
    (tmp_path / "outline.yaml").write_text(dump_outline(make_outline()))
    code, errors, result = cli(["check", str(tmp_path), "--thresholds", str(bad)])
    assert code == 5 and len(errors) == 1 and fragment in errors[0], result.output


def test_writer_settings_are_bounded():
    from pydantic import ValidationError

    for bad in ({"max_attempts": 0}, {"temperature": float("nan")}, {"seed": -1}, {"length_tolerance": 5},
                {"unknown": 1}):
        with pytest.raises(ValidationError):
            WriterSettings(**bad)


def test_a_fresh_draft_saves_its_outline_and_resumes_from_it(tmp_path, fake):
    """The folder's outline.yaml is the user's only when it was there before the run."""
    out = tmp_path / "new"
    first = draft(TOPIC, out, backend=fake, settings=NO_CHECK)
    assert load_outline(out / "outline.yaml") == first.outline
    fake.batches.clear()
    again = draft(TOPIC, out, backend=fake, settings=NO_CHECK)
    assert again.report.resumed_sections == len(first.outline.leaves()) and not fake.requests


def test_a_refused_run_never_removes_another_runs_lock(tmp_path, fake):
    out = tmp_path / "out"
    with RunDir(out):
        with pytest.raises(LockedError):
            expand(make_outline(), out, backend=fake, settings=NO_CHECK)
        assert (out / ".longwriter.lock").exists()


def test_a_users_own_state_json_is_not_taken_for_a_run(tmp_path, fake):
    out = tmp_path / "proj"
    out.mkdir()
    (out / "state.json").write_text('{"my": "app state"}')
    with pytest.raises(OutputError, match="holds no longwriter run"):
        expand(make_outline(), out, backend=fake, settings=NO_CHECK)
    assert (out / "state.json").read_text() == '{"my": "app state"}'


def test_a_crafted_state_cannot_delete_files_outside_the_run(tmp_path, fake):
    out = tmp_path / "run"
    expand(make_outline(), out, backend=fake, settings=NO_CHECK)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    state = json.loads((out / "state.json").read_text())
    state["files"]["sections/../../victim.txt"] = [store.digest("keep")]
    (out / "state.json").write_text(json.dumps(state))
    expand(make_outline(), out, backend=fake, settings=NO_CHECK)
    assert victim.read_text() == "keep"
