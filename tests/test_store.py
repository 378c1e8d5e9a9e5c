"""Persistence, resume after edits, and the output-directory lock."""

import json
import re
import os
import subprocess
import sys

import pytest

from longwriter.errors import Interrupted, LockedError, OutputError
from longwriter.outline import parse_outline
from longwriter.pipeline import RunControl, Silent, expand
from longwriter.store import RunDir
from longwriter.writer import WriterSettings

from .conftest import make_outline

NO_CHECK = WriterSettings(check=False)


def section_files(path):
    return {p.name: p.read_bytes() for p in sorted((path / "sections").iterdir())}


def test_rerun_regenerates_nothing_and_keeps_bytes(fake, tmp_path):
    outline = make_outline(2, 2, 800)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    before, calls = section_files(tmp_path), len(fake.requests)
    result = expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    assert len(fake.requests) == calls
    assert section_files(tmp_path) == before
    assert result.report.resumed_sections == 4


def test_edited_node_and_its_dependants_are_rewritten(fake, tmp_path):
    outline = make_outline(2, 2, 800)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="chapter")
    data = outline.model_dump()
    data["sections"][0]["children"][0]["brief"] = "coffee under the Ottomans"
    fake.batches.clear()
    expand(parse_outline(data), tmp_path, backend=fake, settings=NO_CHECK, policy="chapter")
    written = {re.search(r'Now write section [\d.]+ "([^"]+)"', r.messages[-1].content).group(1)
               for r in fake.requests if "Write about" in r.messages[-1].content}
    assert written == {"Coffee part 1.1", "Coffee part 1.2"}  # chapter 2 untouched


def test_state_records_hash_of_outline_node(fake, tmp_path):
    outline = make_outline(1, 2, 400)
    expand(outline, tmp_path, backend=fake, settings=NO_CHECK)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["sections"]["c1s1"]["node_hash"] == outline.find("c1s1").content_hash()


def test_interrupted_run_keeps_finished_sections_and_resumes(fake, tmp_path):
    outline = make_outline(1, 3, 600)
    control = RunControl()

    class StopAfterFirst(Silent):
        def section(self, result):
            control.stop()

    with pytest.raises(Interrupted):
        expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="serial", control=control,
               progress=StopAfterFirst())
    first = section_files(tmp_path)
    assert len(first) == 1
    assert (tmp_path / "document.md").exists()  # a partial document is assembled even when stopped
    result = expand(outline, tmp_path, backend=fake, settings=NO_CHECK, policy="serial")
    assert result.report.resumed_sections == 1
    assert {k: v for k, v in section_files(tmp_path).items() if k in first} == first


def test_second_run_on_same_directory_is_refused(tmp_path):
    with RunDir(tmp_path):
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            with RunDir(tmp_path):
                pass


def test_stale_lock_from_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from longwriter.store import RunDir\n"
        f"r = RunDir({str(tmp_path)!r}).__enter__(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(LockedError):
        with RunDir(tmp_path):
            pass
    holder.kill()
    holder.wait()
    with RunDir(tmp_path):  # the dead holder's lock is stale: taken over at once
        pass


def test_output_path_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        RunDir(f)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(OutputError, match="not writable"):
        RunDir(ro / "out")


def test_section_ids_cannot_escape_the_directory(fake, tmp_path):
    outline = parse_outline({"title": "T", "topic": "coffee", "words": 200,
                             "sections": [{"id": "../../etc/x", "title": "Coffee", "words": 1}]})
    expand(outline, tmp_path / "run", backend=fake, settings=NO_CHECK)
    names = [p.name for p in (tmp_path / "run" / "sections").iterdir()]
    assert len(names) == 1 and re.fullmatch(r"etc-x_[0-9a-f]{8}\.md", names[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
