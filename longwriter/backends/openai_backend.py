"""A model served by one or more OpenAI-compatible servers (vLLM, SGLang, llama.cpp, Ollama).

One request is one HTTP call through the official SDK (``AsyncOpenAI``); the server batches
(continuous batching, prefix caching), so this backend only routes, retries and translates.
Start-up asks each server what it is (``dialects``), which model it serves and how it counts
tokens; the writer then runs exactly as on the in-process engine. ``openai`` is imported here
only, so the CLI starts instantly."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlparse

from ..errors import ModelError, RequestRefused
from .base import Backend, ChatRequest, Completion
from .dialects import DIALECTS, Dialect, chat_call, completion_call, detect_kind
from .replicas import AllDown, Replica, ReplicaPool
from .tokencount import TokenCounter, local_tokenizer

PER_REPLICA_CAP = 64  # requests in flight on one server at most
PER_REPLICA_CONCURRENCY = 16  # the scheduler's default: enough to keep a continuous batcher full
AVOID_BIAS = -1.0  # logit bias on each token of a rewrite's text to avoid (a mild push, not a ban)
AVOID_TOKENS = 300  # at most this many distinct tokens (OpenAI's own limit for logit_bias)
TOKENIZE = "/tokenize"  # vLLM, SGLang and llama.cpp all serve it at the root, not under /v1
TEMPLATE_TOKENS = 8  # per message: the chat template's role markers, for the context-length check


def api_key_from_env() -> str | None:
    return os.environ.get("LONGWRITER_API_KEY") or os.environ.get("OPENAI_API_KEY")


def server_root(url: str) -> str:
    """``http://host:port`` (and any path prefix) without a trailing ``/v1``: the SDK's base URL
    is this plus ``/v1``, and servers' own endpoints (tokenize, version) hang off the root."""
    try:
        parsed = urlparse(url.strip())
        parsed.port  # noqa: B018 -- checks the port: a bad one raises only when read
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        parsed = None
    spaced = any(c.isspace() for c in url.strip())
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc or spaced:
        raise ModelError(f"--server '{url}': give a URL such as http://localhost:8000")
    path = parsed.path.rstrip("/")
    path = path[: -len("/v1")] if path.endswith("/v1") else path
    return f"{parsed.scheme}://{parsed.netloc}{path}"


class OpenAIServerBackend(Backend):
    """Replicas of one model behind OpenAI-compatible servers. ``model``: the name the servers
    know it by (None: the one model they serve)."""

    def __init__(self, servers: Sequence[str], model: str | None = None, *, api_key: str | None = None,
                 timeout: float = 600.0) -> None:
        super().__init__()
        import openai

        self.openai, self.timeout = openai, timeout
        self.api_key = api_key or api_key_from_env() or "EMPTY"  # servers without auth accept any key
        roots = list(dict.fromkeys(server_root(u) for u in servers))
        info = _Startup(self, roots).run(model)
        self.name, self.dialect, self.tokens, self.max_len = info.model, info.dialect, info.tokens, info.max_len
        self.notes = info.notes
        self.pool = ReplicaPool([Replica(r, self._async_client) for r in roots], PER_REPLICA_CAP, self._probe,
                                self._unavailable)
        for replica in self.pool.replicas:
            if replica.url in info.down:
                self.pool.mark_down(replica, info.down[replica.url])
        self.concurrency = PER_REPLICA_CONCURRENCY * len(roots)
        self.avoid_skipped = 0
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ the seam

    def count_tokens(self, text: str) -> int:
        return self.tokens.count(text)

    async def complete(self, request: ChatRequest) -> Completion:
        if self.cancelled:
            return Completion.cancelled()
        self._loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(self.pool.call(lambda replica: self._send(replica, request)))
        self._tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            caller_cancelled = getattr(asyncio.current_task(), "cancelling", lambda: 0)()  # Python 3.11+
            if caller_cancelled or not self.cancelled:
                raise  # the caller was cancelled, not the request
            return Completion.cancelled()
        except self.openai.APIStatusError as err:
            raise self._refusal(err) from None
        finally:
            self._tasks.discard(task)

    def cancel(self) -> None:
        """Stop: requests in flight are abandoned (closing their connections makes the servers
        abort them) and return as cancelled. Safe from a signal handler or another thread."""
        super().cancel()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(lambda: [t.cancel() for t in list(self._tasks)])

    async def aclose(self) -> None:
        for replica in self.pool.replicas:
            await replica.aclose()

    def report(self) -> dict:
        return {"server": self.dialect.kind, "model": self.name, "lacks": self.dialect.lacks(),
                "token_counts": self.tokens.source, "avoid_skipped": self.avoid_skipped,
                "replicas": [r.stats() for r in self.pool.replicas]}

    # ------------------------------------------------------------------ one call

    async def _send(self, replica: Replica, request: ChatRequest) -> Completion:
        max_tokens = self._max_tokens(request)
        bias = await self._avoid_bias(replica, request.avoid)
        client = replica.client
        if request.prefill and self.dialect.prefill == "completions":
            prompt = self.tokens.tokenizer.apply_chat_template(
                [m.model_dump() for m in request.messages], add_generation_prompt=True, tokenize=False)
            reply = await client.completions.create(
                **completion_call(self.name, prompt + request.prefill, request, max_tokens, bias))
            text = reply.choices[0].text
        else:
            reply = await client.chat.completions.create(**chat_call(self.dialect, self.name, request, max_tokens, bias))
            text = reply.choices[0].message.content or ""
            text = _without_echo(text, request.prefill) if self.dialect.prefill == "trailing_assistant" else text
        text, reason = request.sampling.cut(text, "length" if reply.choices[0].finish_reason == "length" else "stop")
        usage = reply.usage
        return Completion(text=text, prompt_tokens=usage.prompt_tokens if usage else 0,
                          completion_tokens=usage.completion_tokens if usage else self.count_tokens(text),
                          finish_reason=reason)

    def _max_tokens(self, request: ChatRequest) -> int:
        """The request's limit, lowered to what fits the server's context (a request that asks
        for more is refused outright by vLLM)."""
        limit = request.sampling.max_new_tokens
        if self.max_len is None:
            return limit
        prompt = sum(self.count_tokens(m.content) + TEMPLATE_TOKENS for m in request.messages)
        return max(1, min(limit, self.max_len - prompt - self.count_tokens(request.prefill)))

    async def _avoid_bias(self, replica: Replica, avoid: str) -> dict[str, float] | None:
        """A negative logit bias on the tokens of ``avoid`` where the server honours one."""
        if not avoid:
            return None
        if not self.dialect.logit_bias or (self.tokens.tokenizer is None and self.dialect.tokenize is None):
            self.avoid_skipped += 1
            return None
        ids = (self.tokens.tokenizer(avoid, add_special_tokens=False).input_ids if self.tokens.tokenizer
               else await self._server_ids(replica, avoid))
        return {str(i): AVOID_BIAS for i in list(dict.fromkeys(ids))[:AVOID_TOKENS]}

    async def _server_ids(self, replica: Replica, text: str) -> list[int]:
        answer = await replica.client.post(replica.url + TOKENIZE, body=_tokenize_body(self.dialect, self.name, text),
                                           cast_to=object)
        return list(answer.get("tokens") or [])

    # ------------------------------------------------------------------ errors and health

    def _unavailable(self, err: BaseException) -> bool:
        """Errors another replica might not have: connection, timeout, rate limit, server error."""
        if isinstance(err, self.openai.APIConnectionError):  # includes timeouts
            return True
        return isinstance(err, self.openai.APIStatusError) and (err.status_code == 429 or err.status_code >= 500)

    def _refusal(self, err) -> Exception:
        """A 4xx: this request is wrong (the same everywhere), so it is not retried."""
        body = err.body if isinstance(err.body, dict) else {}
        message = str(body.get("message") or err.message).replace("\n", " ")[:300]
        if err.status_code in (401, 403):
            return ModelError(f"the server refused the API key (HTTP {err.status_code}): pass --api-key or set "
                              "LONGWRITER_API_KEY")
        if err.status_code == 404:
            return ModelError(f"the server does not serve model '{self.name}' (HTTP 404: {message})")
        field = f"field '{body['param']}', " if body.get("param") else ""
        return RequestRefused(f"the server refused a request ({field}HTTP {err.status_code}): {message}")

    async def _probe(self, replica: Replica) -> bool:
        try:
            await replica.client.models.list(timeout=10)
            return True
        except self.openai.OpenAIError:
            return False

    def _async_client(self, root: str):
        return self.openai.AsyncOpenAI(base_url=root + "/v1", api_key=self.api_key, max_retries=0,
                                       timeout=self.openai.Timeout(self.timeout, connect=10.0))


def _without_echo(text: str, prefill: str) -> str:
    """The reply without the prefill, which llama.cpp repeats before a continued assistant message
    (vLLM and SGLang return only the new text). Before the stop strings are applied: the prefill
    may hold one, as the planner's numbered list holds newlines."""
    for head in (prefill, prefill.rstrip()):
        if head and text.startswith(head):
            return text[len(head):]
    return text


def _tokenize_body(dialect: Dialect, model: str, text: str) -> dict:
    """The tokenize endpoint's request in this server's shape (the path is the same for all)."""
    return {"content": text} if dialect.tokenize == "llama.cpp" else {"model": model, "prompt": text}


class _Startup:
    """What the servers are, asked once before the run (synchronously, with short timeouts)."""

    def __init__(self, backend: OpenAIServerBackend, roots: list[str]) -> None:
        self.backend, self.roots, self.openai = backend, roots, backend.openai
        self.down: dict[str, str] = {}
        self.notes: list[str] = []
        self._clients: dict[str, object] = {}

    def run(self, model: str | None) -> _Startup:
        listed = self._list_models()
        root, models = next(iter(listed.items()))
        self.model, entry = self._choose_model(root, models, model)
        self.dialect = self._dialect(root, models)
        self.max_len = entry.get("max_model_len") or (entry.get("meta") or {}).get("n_ctx") or None  # vLLM; llama.cpp
        self.tokens = self._counter(root, [self.model, entry.get("root") or ""])
        if self.dialect.prefill == "completions" and self.tokens.tokenizer is None:
            self.dialect = replace(self.dialect, prefill="none")  # no chat template to render here
        lacks = self.dialect.lacks()
        self.notes.append(f"{self.dialect.kind} server{'s' if len(self.roots) > 1 else ''} "
                          f"({len(listed)}/{len(self.roots)} up) serving '{self.model}'; "
                          + (f"lacks {', '.join(lacks)}" if lacks else "every control available"))
        return self

    def _client(self, root: str):
        """One client (one connection) per server for every start-up question."""
        if root not in self._clients:
            self._clients[root] = self.openai.OpenAI(base_url=root + "/v1", api_key=self.backend.api_key,
                                                     max_retries=1, timeout=self.openai.Timeout(10.0, connect=5.0))
        return self._clients[root]

    def _list_models(self) -> dict[str, dict]:
        """Each reachable server's ``/v1/models`` answer; unreachable ones start as down."""
        listed: dict[str, dict] = {}
        for root in self.roots:
            try:
                listed[root] = self._client(root).get("/models", cast_to=object)
            except self.openai.AuthenticationError:
                raise ModelError(f"server {root} refused the API key: pass --api-key or set LONGWRITER_API_KEY") from None
            except self.openai.OpenAIError as err:
                self.down[root] = f"{type(err).__name__}: {str(err)[:120]}"
                self.notes.append(f"server {root} is not answering ({self.down[root]}); it will be probed again")
        if not listed:
            raise ModelError("no server answered: " + "; ".join(f"{r} ({e})" for r, e in self.down.items()))
        return listed

    def _choose_model(self, root: str, models: dict, wanted: str | None) -> tuple[str, dict]:
        entries = {str(m.get("id")): m for m in (models.get("data") or []) if isinstance(m, dict)}
        if wanted is None and len(entries) == 1:
            return next(iter(entries.items()))
        if wanted in entries:
            return wanted, entries[wanted]
        served = ", ".join(sorted(entries)) or "nothing"
        if wanted is None:
            raise ModelError(f"server {root} serves several models ({served}): pick one with --model")
        raise ModelError(f"server {root} does not serve model '{wanted}' (it serves: {served})")

    def _dialect(self, root: str, models: dict) -> Dialect:
        client = self._client(root)

        def probe(path: str) -> dict | None:
            try:
                answer = client.get(root + path, cast_to=object, options={"timeout": 5.0})
                return answer if isinstance(answer, dict) else None
            except self.openai.OpenAIError:
                return None

        return DIALECTS[detect_kind(models, probe)]

    def _counter(self, root: str, names: list[str]) -> TokenCounter:
        tokenizer = local_tokenizer([n for n in names if n])
        if tokenizer is not None:
            return TokenCounter(tokenizer, source="local tokenizer")
        if self.dialect.tokenize is None:
            return TokenCounter()
        client = self._client(root)

        def tokenize(text: str) -> int:
            body = _tokenize_body(self.dialect, self.model, text)
            return len(client.post(root + TOKENIZE, body=body, cast_to=object).get("tokens") or [])

        try:
            return TokenCounter.calibrated(tokenize)
        except (self.openai.OpenAIError, AttributeError):
            return TokenCounter()
