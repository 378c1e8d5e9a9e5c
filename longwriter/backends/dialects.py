"""What each OpenAI-compatible server understands, and one request in its dialect.

Servers share the chat-completions shape but differ in the controls longwriter needs: extra
sampling options, continuing a prefilled assistant reply, token counting and logit bias. A
:class:`Dialect` names them; :func:`detect_kind` tells the servers apart at start-up from
``/v1/models`` (``owned_by``) and each server's own info endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .base import ChatRequest

Kind = Literal["vllm", "sglang", "llama.cpp", "ollama", "openai"]
#: How a reply that starts with given text (the prefill) is asked for.
Prefill = Literal["continue_final_message", "trailing_assistant", "completions", "none"]


@dataclass(frozen=True)
class Dialect:
    """The controls one kind of server honours."""

    kind: Kind
    sampling: Literal["vllm", "llama.cpp", "basic"]  # where top_k, min_tokens, repetition penalty go
    prefill: Prefill
    logit_bias: bool
    tokenize: Literal["vllm", "llama.cpp", None]  # the shape of the server's tokenize endpoint

    def lacks(self) -> list[str]:
        """The controls this server lacks, as the start-up line names them."""
        missing = []
        if self.sampling == "basic":
            missing += ["top_k", "min_tokens (length control falls back to continuations)", "repetition_penalty"]
        elif self.sampling == "llama.cpp":
            missing += ["min_tokens (length control falls back to continuations)"]
        if self.prefill == "none":
            missing.append("prefill (continuations restart instead of continuing)")
        if not self.logit_bias:
            missing.append("logit_bias (a rewrite's text to avoid is skipped)")
        if self.tokenize is None:
            missing.append("tokenize (token counts are estimated)")
        return missing


DIALECTS: dict[Kind, Dialect] = {
    "vllm": Dialect("vllm", "vllm", "continue_final_message", True, "vllm"),
    "sglang": Dialect("sglang", "vllm", "continue_final_message", True, "vllm"),
    "llama.cpp": Dialect("llama.cpp", "llama.cpp", "trailing_assistant", True, "llama.cpp"),
    "ollama": Dialect("ollama", "basic", "trailing_assistant", False, None),
    "openai": Dialect("openai", "basic", "completions", True, None),
}

_OWNERS: dict[str, Kind] = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp", "llama.cpp": "llama.cpp",
                            "ollama": "ollama", "library": "ollama"}
# Each server's own info endpoint, asked when ``owned_by`` does not tell (first answer wins).
_PROBES: tuple[tuple[str, Kind], ...] = (("/get_server_info", "sglang"), ("/props", "llama.cpp"),
                                         ("/api/version", "ollama"), ("/version", "vllm"))


def detect_kind(models: dict, probe: Callable[[str], dict | None]) -> Kind:
    """The server's kind from its ``/v1/models`` answer, else from ``probe(path)`` (a GET that
    returns the decoded JSON, or None when the path does not answer)."""
    for model in models.get("data") or []:
        kind = _OWNERS.get(str(model.get("owned_by", "")).lower())
        if kind:
            return kind
    for path, kind in _PROBES:
        if probe(path) is not None:
            return kind
    return "openai"


def chat_call(dialect: Dialect, model: str, request: ChatRequest, max_tokens: int,
              logit_bias: dict[str, float] | None) -> dict:
    """Keyword arguments for ``chat.completions.create`` (prefill as the dialect allows)."""
    messages = [m.model_dump() for m in request.messages]
    extra = sampling_extras(dialect, request, max_tokens)
    if request.prefill and dialect.prefill in ("continue_final_message", "trailing_assistant"):
        messages.append({"role": "assistant", "content": request.prefill})
        if dialect.prefill == "continue_final_message":
            extra |= {"continue_final_message": True, "add_generation_prompt": False}
    return common_call(request, model, max_tokens, logit_bias) | {"messages": messages, "extra_body": extra}


def completion_call(model: str, prompt: str, request: ChatRequest, max_tokens: int,
                    logit_bias: dict[str, float] | None) -> dict:
    """Keyword arguments for ``completions.create``: the chat rendered by the model's template
    with the prefill appended (servers that cannot continue a chat reply)."""
    return common_call(request, model, max_tokens, logit_bias) | {"prompt": prompt}


def common_call(request: ChatRequest, model: str, max_tokens: int, logit_bias: dict[str, float] | None) -> dict:
    s = request.sampling
    call = {"model": model, "max_tokens": max_tokens, "temperature": s.temperature, "top_p": s.top_p}
    if s.seed is not None:
        call["seed"] = s.seed
    if s.stop:
        call["stop"] = list(s.stop)
    if logit_bias:
        call["logit_bias"] = logit_bias
    return call


def sampling_extras(dialect: Dialect, request: ChatRequest, max_tokens: int) -> dict:
    """The sampling controls beyond OpenAI's, under the names this server reads."""
    s, extra = request.sampling, {}
    if dialect.sampling == "basic":
        return extra
    if s.top_k > 0:
        extra["top_k"] = s.top_k
    if dialect.sampling == "vllm":
        extra["repetition_penalty"] = s.repetition_penalty
        if s.min_new_tokens:
            extra["min_tokens"] = min(s.min_new_tokens, max_tokens)
    else:  # llama.cpp reads its own names and silently ignores repetition_penalty and min_tokens
        extra["repeat_penalty"] = s.repetition_penalty
        if s.min_new_tokens and s.min_new_tokens >= max_tokens:
            extra["ignore_eos"] = True  # a fixed length: the one form of min_tokens it honours
    return extra
