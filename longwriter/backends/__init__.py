"""Model backends. Heavy libraries are imported only when a backend is built."""

from __future__ import annotations

from functools import lru_cache

from .base import Backend, ChatRequest, Completion, Message, Sampling

__all__ = ["Backend", "ChatRequest", "Completion", "Message", "Sampling", "load_backend"]


@lru_cache(maxsize=2)  # one process loads a model once (API users, in-process tests)
def load_backend(
    model: str | None = None, *, device: str = "auto", batch_size: int | None = None, trust_remote_code: bool = False
) -> Backend:
    """The backend for ``model`` (a Hugging Face id or local directory), or the embedded
    SmolLM2-135M-Instruct when ``model`` is None."""
    from .transformers_backend import TransformersBackend

    if model is None:
        from .embedded import EMBEDDED_NAME, embedded_model_dir

        return TransformersBackend(str(embedded_model_dir()), device=device, batch_size=batch_size, name=EMBEDDED_NAME)
    return TransformersBackend(model, device=device, batch_size=batch_size, trust_remote_code=trust_remote_code)
