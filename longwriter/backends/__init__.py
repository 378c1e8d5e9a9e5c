"""Model backends. Heavy libraries are imported only when a backend is built."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .base import Backend, BatchStats, ChatRequest, Completion, Message, Sampling

__all__ = ["Backend", "BatchStats", "ChatRequest", "Completion", "Message", "ModelSpec", "Sampling", "load_backend", "server_backend"]

from ..defaults import DEVICE, DTYPES


class ModelSpec(BaseModel):
    """Which model to load and where: a Hugging Face id or local directory (None: the embedded
    model), the device, the batch size, the in-process engine (stepping: rows join and leave
    between decode steps; padded: one generate per batch; auto: stepping wherever the model's
    cache allows it, else padded), the weights' dtype (auto: bfloat16 on GPUs and on CPUs that
    multiply it natively, else float32) and whether the model's own code may run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    device: str = "auto"
    batch_size: int | None = Field(None, ge=1, le=4096)
    trust_remote_code: bool = False
    engine: Literal["auto", "stepping", "padded"] = "auto"
    dtype: Literal[DTYPES] = "auto"
    #: OpenAI-compatible servers of one model (replicas); ``name`` is then the name they serve.
    servers: tuple[str, ...] = ()
    api_key: SecretStr | None = None
    timeout: float = Field(600.0, gt=0, le=86_400, description="seconds one server request may take")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE.match(value):
            raise ValueError("device must be auto, cpu, mps, cuda or cuda:N")
        return value


def server_backend(spec: ModelSpec) -> Backend:
    """The backend for the OpenAI-compatible servers ``spec`` names (asked at once)."""
    from .openai_backend import OpenAIServerBackend

    key = spec.api_key.get_secret_value() if spec.api_key else None
    return OpenAIServerBackend(spec.servers, spec.name, api_key=key, timeout=spec.timeout)


@lru_cache(maxsize=2)  # one process loads a model once (API users, in-process tests)
def load_backend(
    model: str | None = None, *, device: str = "auto", batch_size: int | None = None, trust_remote_code: bool = False,
    engine: str = "auto", dtype: str = "auto",
) -> Backend:
    """The backend for ``model`` (a Hugging Face id or local directory), or the embedded
    SmolLM2-135M-Instruct when ``model`` is None."""
    from .transformers_backend import TransformersBackend, check_device

    if device != "auto":  # a device this machine lacks is refused before any weights are read
        import torch

        check_device(torch, device)
    if model is None:
        from .embedded import EMBEDDED_NAME, EMBEDDED_SAMPLING, embedded_model_dir

        backend = TransformersBackend(str(embedded_model_dir()), device=device, batch_size=batch_size,
                                      name=EMBEDDED_NAME, engine=engine, dtype=dtype)
        backend.recommended = backend.recommended or dict(EMBEDDED_SAMPLING)  # the GGUF carries none
        return backend
    return TransformersBackend(model, device=device, batch_size=batch_size, trust_remote_code=trust_remote_code,
                               engine=engine, dtype=dtype)
