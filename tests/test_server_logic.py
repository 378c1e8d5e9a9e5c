"""Fast tests of the server client's logic (dialects, retries, failover, routing, start-up,
cancel) against an in-process scripted HTTP server. The real path is tests/test_server_vllm.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from longwriter.backends import replicas
from longwriter.backends.base import ChatRequest, Message, Sampling
from longwriter.backends.dialects import DIALECTS, chat_call, detect_kind
from longwriter.backends.openai_backend import OpenAIServerBackend, server_root
from longwriter.backends.replicas import AllDown, Replica, ReplicaPool
from longwriter.backends.tokencount import TokenCounter
from longwriter.errors import ModelError, RequestRefused


def reply(text: str = "Coffee came from Ethiopia.", reason: str = "stop") -> dict:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}


class FakeServer:
    """Answers like an OpenAI-compatible server. ``script[path]`` holds (status, body) answers
    given in order before the default; every POST body is recorded in ``bodies``."""

    def __init__(self, owner: str = "vllm", models: tuple[str, ...] = ("m",), delay: float = 0.0) -> None:
        self.owner, self.models, self.delay = owner, models, delay
        self.script: dict[str, list[tuple[int, dict]]] = {}
        self.bodies: list[tuple[str, dict]] = []
        self.extra_get: dict[str, dict] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/v1/models":
                    return self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "owned_by": fake.owner, "max_model_len": 4096} for m in fake.models]})
                return self._send(*((200, fake.extra_get[self.path]) if self.path in fake.extra_get else (404, {})))

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.bodies.append((self.path, body))
                if self.path == "/tokenize":
                    return self._send(200, {"tokens": list(range(len((body.get("prompt") or "").split())))})
                queue = fake.script.get(self.path) or []
                time.sleep(fake.delay)
                self._send(*(queue.pop(0) if queue else (200, reply())))

            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda request, address: None  # a cancelled client hangs up mid-reply
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def chats(self) -> list[dict]:
        return [b for path, b in self.bodies if path == "/v1/chat/completions"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(replicas, "BACKOFF", 0.01)


def request(prefill: str = "", **sampling) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="Write about coffee.")], prefill=prefill,
                       sampling=Sampling(**sampling))


def complete(backend: OpenAIServerBackend, *requests: ChatRequest):
    return backend.generate(list(requests))


# ---------------------------------------------------------------- dialects (pure)


def test_vllm_gets_extra_sampling_and_continues_the_prefill():
    call = chat_call(DIALECTS["vllm"], "m", request("1. Beans\n2.", min_new_tokens=50, top_k=40, seed=7), 200, None)
    assert call["messages"][-1] == {"role": "assistant", "content": "1. Beans\n2."}
    assert call["extra_body"] == {"top_k": 40, "repetition_penalty": 1.1, "min_tokens": 50,
                                  "continue_final_message": True, "add_generation_prompt": False}
    assert call["seed"] == 7 and call["max_tokens"] == 200


def test_llama_cpp_gets_its_own_names_and_a_trailing_assistant_message():
    call = chat_call(DIALECTS["llama.cpp"], "m", request("So", min_new_tokens=100, max_new_tokens=100), 100, None)
    assert call["messages"][-1]["role"] == "assistant"
    assert call["extra_body"] == {"top_k": 50, "repeat_penalty": 1.1, "ignore_eos": True}
    loose = chat_call(DIALECTS["llama.cpp"], "m", request(min_new_tokens=10, max_new_tokens=100), 100, None)
    assert "ignore_eos" not in loose["extra_body"]


def test_ollama_sends_only_what_it_reads_and_says_what_it_lacks():
    call = chat_call(DIALECTS["ollama"], "m", request(min_new_tokens=10), 100, {"5": -1.0})
    assert call["extra_body"] == {}
    lacks = " ".join(DIALECTS["ollama"].lacks())
    assert "min_tokens (length control falls back to continuations)" in lacks and "logit_bias" in lacks
    assert DIALECTS["vllm"].lacks() == []


@pytest.mark.parametrize("owner,kind", [("vllm", "vllm"), ("sglang", "sglang"), ("llamacpp", "llama.cpp"),
                                        ("library", "ollama"), ("ollama", "ollama")])
def test_kind_from_owned_by(owner, kind):
    assert detect_kind({"data": [{"id": "m", "owned_by": owner}]}, lambda path: None) == kind


def test_kind_from_info_endpoints_when_owned_by_says_nothing():
    models = {"data": [{"id": "m", "owned_by": "organization"}]}
    assert detect_kind(models, lambda p: {"total_slots": 4} if p == "/props" else None) == "llama.cpp"
    assert detect_kind(models, lambda p: {"version": "0.5"} if p == "/api/version" else None) == "ollama"
    assert detect_kind(models, lambda p: None) == "openai"


@pytest.mark.parametrize("url,root", [("http://h:8000", "http://h:8000"), ("http://h:8000/v1/", "http://h:8000"),
                                      ("https://h/proxy/v1", "https://h/proxy")])
def test_server_root(url, root):
    assert server_root(url) == root


@pytest.mark.parametrize("url", ["ftp://h", "localhost:8000", "", "http://", "http://[::1", "http://h:99999",
                                 "http://exa mple.com"])
def test_server_url_must_be_http(url):
    with pytest.raises(ModelError):
        server_root(url)


def test_token_estimate_calibrated_on_the_server():
    counter = TokenCounter.calibrated(lambda text: len(text) // 2)  # a tokenizer of 2 chars a token
    assert counter.count("a" * 100) == pytest.approx(50, abs=2)
    assert counter.source == "calibrated on the server" and counter.count("") == 0


# ---------------------------------------------------------------- start-up


def test_start_up_names_the_kind_and_the_only_model(server):
    backend = OpenAIServerBackend([server.url])
    assert backend.name == "m" and backend.dialect.kind == "vllm"
    assert backend.notes == ["vllm server (1/1 up) serving 'm'; every control available"]
    assert backend.tokens.source == "calibrated on the server"  # no local tokenizer named 'm'


def test_a_model_not_served_is_one_line_naming_what_is():
    s = FakeServer(models=("a", "b"))
    try:
        with pytest.raises(ModelError, match=r"does not serve model 'c' \(it serves: a, b\)"):
            OpenAIServerBackend([s.url], "c")
        with pytest.raises(ModelError, match="serves several models .*--model"):
            OpenAIServerBackend([s.url])
    finally:
        s.close()


def test_a_replica_down_at_start_is_noted_and_probed_later(server):
    dead = f"http://127.0.0.1:{_free_port()}"
    backend = OpenAIServerBackend([dead, server.url], "m")
    assert any("is not answering" in n for n in backend.notes) and "(1/2 up)" in backend.notes[-1]
    assert [c.text for c in complete(backend, request())] == ["Coffee came from Ethiopia."]
    assert backend.report()["replicas"][0]["down"] and backend.report()["replicas"][1]["requests"] == 1


def _free_port() -> int:
    from tests.servers import free_port

    return free_port()


# ---------------------------------------------------------------- retries and refusals


def test_503_and_429_are_retried_on_the_same_replica(server):
    server.script["/v1/chat/completions"] = [(503, {"error": {"message": "busy"}}), (429, {"error": {}})]
    backend = OpenAIServerBackend([server.url], "m")
    (c,) = complete(backend, request())
    assert c.text == "Coffee came from Ethiopia." and c.completion_tokens == 4
    (stats,) = backend.report()["replicas"]
    assert (stats["requests"], stats["failures"], stats["down"]) == (3, 2, False)


def test_a_bad_request_is_never_retried_and_names_the_field(server):
    server.script["/v1/chat/completions"] = [(400, {"error": {"message": "top_k must be -1 or at least 1",
                                                             "param": "top_k", "code": 400}})]
    backend = OpenAIServerBackend([server.url], "m")
    with pytest.raises(RequestRefused, match=r"field 'top_k', HTTP 400\): top_k must be"):
        complete(backend, request())
    assert len(server.chats()) == 1


def test_a_rejected_key_is_a_model_error(server):
    server.script["/v1/chat/completions"] = [(401, {"error": {"message": "bad key"}})]
    with pytest.raises(ModelError, match="refused the API key"):
        complete(OpenAIServerBackend([server.url], "m"), request())


# ---------------------------------------------------------------- failover


def test_a_failing_replica_is_marked_down_and_its_requests_move():
    bad, good = FakeServer(), FakeServer()
    bad.script["/v1/chat/completions"] = [(500, {"error": {"message": "boom"}})] * 50
    try:
        backend = OpenAIServerBackend([bad.url, good.url], "m")
        results = complete(backend, *[request(seed=i) for i in range(6)])
        assert all(c.text == "Coffee came from Ethiopia." for c in results)
        first, second = backend.report()["replicas"]
        assert first["down"] and first["failures"] >= 1 and second["taken_over"] >= 1
        assert len(good.chats()) == 6
    finally:
        bad.close(), good.close()


def test_every_replica_down_is_exit_4():
    a = FakeServer()
    a.script["/v1/chat/completions"] = [(503, {"error": {}})] * 10
    try:
        backend = OpenAIServerBackend([a.url], "m")
        with pytest.raises(AllDown, match="every server is down") as err:
            complete(backend, request())
        assert err.value.exit_code == 4
    finally:
        a.close()


def test_least_in_flight_routing_respects_the_cap():
    seen: list[tuple[str, int]] = []

    async def send(replica: Replica):
        seen.append((replica.url, replica.in_flight))
        await asyncio.sleep(0.01)
        return replica.url

    async def probe(replica):
        return True

    pool = ReplicaPool([Replica("a", lambda u: None), Replica("b", lambda u: None)], 2, probe, lambda e: False)

    async def go():
        return await asyncio.gather(*(pool.call(send) for _ in range(12)))

    urls = asyncio.run(go())
    assert urls.count("a") == urls.count("b") == 6
    assert max(n for _, n in seen) <= 2


def test_a_down_replica_comes_back_after_a_probe(monkeypatch):
    monkeypatch.setattr(replicas, "PROBE_AFTER", (0.01, 0.02))
    calls = {"n": 0}

    async def send(replica: Replica):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise OSError("refused")
        return "ok"

    async def probe(replica):
        return True

    pool = ReplicaPool([Replica("a", lambda u: None)], 4, probe, lambda e: isinstance(e, OSError))

    async def go():
        with pytest.raises(AllDown):
            await pool.call(send)
        await asyncio.sleep(0.1)  # the probe brings it back
        return await pool.call(send)

    assert asyncio.run(go()) == "ok"


# ---------------------------------------------------------------- avoid text, cancel


def test_avoid_text_becomes_a_logit_bias_where_honoured(server):
    backend = OpenAIServerBackend([server.url], "m")
    complete(backend, ChatRequest(messages=[Message(role="user", content="x")], avoid="beans roasted in Yemen"))
    (body,) = server.chats()
    assert body["logit_bias"] == {"0": -1.0, "1": -1.0, "2": -1.0, "3": -1.0}


def test_avoid_text_is_skipped_and_counted_on_ollama():
    s = FakeServer(owner="ollama")
    try:
        backend = OpenAIServerBackend([s.url], "m")
        complete(backend, ChatRequest(messages=[Message(role="user", content="x")], avoid="beans"))
        assert "logit_bias" not in s.chats()[0] and backend.report()["avoid_skipped"] == 1
    finally:
        s.close()


def test_cancel_returns_requests_in_flight_as_cancelled():
    slow = FakeServer(delay=5.0)
    try:
        backend = OpenAIServerBackend([slow.url], "m")

        async def go():
            task = asyncio.gather(*(backend.complete(request()) for _ in range(3)))
            await asyncio.sleep(0.3)
            backend.cancel()
            return await task

        started = time.monotonic()
        results = asyncio.run(go())
        assert [c.finish_reason for c in results] == ["cancelled"] * 3
        assert time.monotonic() - started < 3
    finally:
        slow.close()


def test_prompt_and_limit_fit_the_server_context(server):
    backend = OpenAIServerBackend([server.url], "m")
    complete(backend, request(max_new_tokens=100_000))
    (body,) = server.chats()
    assert 3_900 < body["max_tokens"] < 4096  # 4096 minus the prompt


# ---------------------------------------------------------------- through the CLI


def test_every_server_down_mid_run_saves_work_and_the_same_command_resumes(tmp_path):
    """The scripted server answers 3 requests, then only 503s: exit 4 with one line, finished
    sections kept; once it answers again, the same command finishes the rest."""
    from click.testing import CliRunner

    from longwriter.cli import main
    from longwriter.outline import dump_outline
    from tests.conftest import make_outline

    s = FakeServer()
    outline = tmp_path / "outline.yaml"
    outline.write_text(dump_outline(make_outline(3, 1, 150)))
    args = ["expand", str(outline), "--out", str(tmp_path / "run"), "--server", s.url, "--no-check",
            "--context", "serial"]
    try:
        answered = [(200, reply(" ".join(["Coffee beans travelled from Ethiopia to Yemen."] * 12)))] * 3
        s.script["/v1/chat/completions"] = answered + [(503, {"error": {"message": "down"}})] * 100
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 4, first.output
        errors = [ln for ln in first.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "every server is down" in errors[0]
        kept = sorted(p.name for p in (tmp_path / "run" / "sections").glob("*.md"))
        assert kept, "a section finished before the outage must be saved"
        s.script["/v1/chat/completions"] = []
        second = CliRunner().invoke(main, args)
        assert second.exit_code == 0, second.output
        report = json.loads((tmp_path / "run" / "report.json").read_text())
        assert report["resumed_sections"] == len(kept) and len(report["sections"]) == 3
    finally:
        s.close()


def test_llama_cpp_echo_of_the_prefill_is_removed_before_stop_strings():
    """llama.cpp repeats a continued assistant message; the prefill holds a newline that is
    also the stop string, so the echo must go first."""
    s = FakeServer(owner="llamacpp")
    s.script["/v1/chat/completions"] = [(200, reply("1. Beans\n2. Trade routes"))]
    try:
        backend = OpenAIServerBackend([s.url], "m")
        (c,) = complete(backend, request("1. Beans\n2.", stop=("\n",)))
        assert c.text == " Trade routes" and c.finish_reason == "stop"
        assert s.chats()[0]["messages"][-1] == {"role": "assistant", "content": "1. Beans\n2."}
    finally:
        s.close()


def test_start_up_asks_the_info_endpoints_when_owned_by_says_nothing():
    s = FakeServer(owner="organization")
    s.extra_get["/props"] = {"total_slots": 2}
    try:
        backend = OpenAIServerBackend([s.url])
        assert backend.dialect.kind == "llama.cpp" and backend.notes[-1].startswith("llama.cpp server (1/1 up)")
    finally:
        s.close()
