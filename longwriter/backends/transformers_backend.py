"""Any Hugging Face causal LM (hub id or local directory) through transformers' ``generate``.

Requests arrive one at a time (``complete``) and wait in a queue; whenever the model is free,
every queued request that fits goes into the next padded ``generate`` call, which runs in a
worker thread so the event loop stays free (dynamic batching, ``batching.DynamicBatcher``).
Within a batch, requests are sorted by prompt length (less padding) and left-padded; each
row keeps its own token limits, sampling options and random seed (``rowsampling``), so drafts,
rewrites and summaries share one batch. Only requests with different stop strings are split.
torch and transformers are imported here only, so the CLI starts instantly."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

from ..defaults import DTYPES
from ..errors import ModelError
from . import cpu_thread
from .base import Backend, ChatRequest, Completion
from .batching import DynamicBatcher


class TransformersBackend(Backend):
    """A local causal language model. ``device`` is 'auto', 'cpu' or 'cuda[:N]'. ``engine``:
    'stepping' (iteration-level batching, ``stepping.py``), 'padded' (one padded ``generate``
    per batch) or 'auto' (stepping wherever the model's cache allows it, else padded).
    ``dtype``: the weights' type, 'auto' or a torch dtype's name (``choose_dtype``)."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        trust_remote_code: bool = False,
        gguf_file: str | None = None,
        name: str | None = None,
        engine: str = "auto",
        dtype: str = "auto",
    ) -> None:
        super().__init__()
        source, local_only = resolve_model(model)  # fail fast, before torch is imported
        import torch

        self.torch = torch
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        check_device(torch, self.device)
        self.name = name or model
        # the thread every computation of this model runs in (cpu_thread explains why one)
        self._thread = cpu_thread.executor() if self.device == "cpu" else ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="longwriter-engine")
        self.dtype = choose_dtype(torch, self.device, dtype)
        self.tokenizer, self.model = self._in_thread(_load, model, source, local_only, self.device,
                                                     trust_remote_code, gguf_file, self.dtype)
        self.recommended = recommended_sampling(self.model.generation_config)
        self.batch_size = batch_size or self._auto_batch_size()
        self.concurrency = 2 * self.batch_size  # a full batch running and the next one queued
        #: Seconds spent inside the model and tokens produced (benchmarks read these).
        self.generate_seconds = 0.0
        self.generated_tokens = 0
        self.engine = self._choose_engine(engine)
        self.continuous = self.engine == "stepping"
        self.notes.append(f"{self.engine} engine, {self.report()['dtype']} weights on {self.device}, "
                          f"up to {self.batch_size} rows at once")
        if self.engine == "stepping":
            self._batcher = self._continuous_batcher()
        else:
            self._batcher = DynamicBatcher(self._run_batch, lambda: self.batch_size, on_batch=lambda: self.on_batch,
                                           gather=True, upcoming=lambda: self.upcoming(), executor=self._thread)

    # ------------------------------------------------------------------ public

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids) if text else 0

    async def complete(self, request: ChatRequest) -> Completion:
        return await self._batcher.submit(request)

    def report(self) -> dict:
        return {"engine": self.engine, "device": self.device, "dtype": str(self.dtype).removeprefix("torch."),
                "batch_size": self.batch_size}

    async def run_cpu(self, fn):
        """On CPU, the checker's work runs in the engine's thread (the one torch thread, see
        ``cpu_thread``), between two steps, rather than beside a running step on the same cores."""
        if self.device != "cpu":
            return await super().run_cpu(fn)
        return await self._batcher.in_worker(fn)

    def _run_batch(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """One engine step: generate every request (in chunks of the batch size, same stop
        strings together); called in the batcher's worker thread."""
        if self.cancelled:
            return [Completion.cancelled() for _ in requests]
        results: list[Completion | None] = [None] * len(requests)
        prompts = [self._render(r) for r in requests]
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.sampling.group_key(), []).append(i)
        for indices in groups.values():
            indices.sort(key=lambda i: len(prompts[i]))  # similar lengths share a batch
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for i, c in zip(chunk, self._generate_halving([requests[i] for i in chunk], [prompts[i] for i in chunk])):
                    results[i] = c
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------------ internals

    def _choose_engine(self, engine: str) -> str:
        if engine not in ("auto", "stepping", "padded"):
            raise ValueError(f"engine must be auto, stepping or padded, not {engine!r}")
        # Stepping measured as fast as padded per step on CPU (1 row 27.1 tok/s each, 16 rows
        # 142.9 against 138.7) and faster on whole runs (benchmarks.throughput 28.1 s against
        # 29.8 s; benchmarks.batch: see README), once every torch call ran in one thread.
        if engine == "padded":
            return "padded"
        from .stepping import cache_of, supports_stepping

        def probe():
            enc = self.tokenizer("Hello", return_tensors="pt").to(self.device)
            with self.torch.inference_mode():
                return supports_stepping(cache_of(self.model(**enc, use_cache=True)))

        if self._in_thread(probe):
            return "stepping"
        if engine == "stepping":
            raise ModelError(f"model '{self.name}': its cache (sliding window or recurrent) does not allow "
                             "rows to join and leave a running batch; use the padded engine")
        return "padded"

    def _continuous_batcher(self):
        from .batching import ContinuousBatcher
        from .stepping import SteppingEngine

        def account(seconds: float, tokens: int) -> None:
            self.generate_seconds += seconds
            self.generated_tokens += tokens

        def shrink() -> None:
            self.torch.cuda.empty_cache()
            self.batch_size = max(1, self.batch_size // 2)

        engine = SteppingEngine(self.torch, self.model, self.tokenizer, self.device, self._eos_ids(), self._render,
                                lambda: self.cancelled, account)
        return ContinuousBatcher(engine, lambda: self.batch_size, out_of_memory=(self.torch.OutOfMemoryError,),
                                 shrink=shrink, on_batch=lambda: self.on_batch, executor=self._thread)

    def _in_thread(self, fn, *args):
        """``fn(*args)`` in this model's thread, waited for (loading, the engine probe)."""
        if self._thread is cpu_thread.executor():
            return cpu_thread.call(fn, *args)
        return self._thread.submit(fn, *args).result()

    def _render(self, request: ChatRequest) -> str:
        messages = [m.model_dump() for m in request.messages]
        tok = self.tokenizer
        if tok.chat_template is None:  # a base model: plain transcript
            text = "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages) + "Assistant: "
            return text + request.prefill
        try:
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # templates that refuse a system turn (e.g. Gemma): fold it into the user's
            system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
            rest = [m for m in messages if m["role"] != "system"]
            rest[0] = {"role": rest[0]["role"], "content": f"{system}\n\n{rest[0]['content']}".strip()}
            text = tok.apply_chat_template(rest, tokenize=False, add_generation_prompt=True)
        return text + request.prefill

    def _generate_halving(self, requests: list[ChatRequest], prompts: list[str]) -> list[Completion]:
        """Generate a chunk; on GPU out-of-memory, split it in half and retry each half."""
        try:
            return self._generate_chunk(requests, prompts)
        except self.torch.OutOfMemoryError:
            if len(requests) == 1:
                raise ModelError("out of GPU memory even at batch size 1; use a smaller model") from None
            self.torch.cuda.empty_cache()
            self.batch_size = max(1, len(requests) // 2)
            half = len(requests) // 2
            return self._generate_halving(requests[:half], prompts[:half]) + self._generate_halving(
                requests[half:], prompts[half:]
            )

    def _generate_chunk(self, requests: list[ChatRequest], prompts: list[str]) -> list[Completion]:
        torch = self.torch
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        limits = _RowLimits(torch, requests, enc.input_ids.shape[1], self._eos_ids(), self._cancel, self.tokenizer)
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=max(r.sampling.max_new_tokens for r in requests),
                # Our last processor draws each row's token, so generate's own sampling and
                # penalty stay off (do_sample=False takes the one finite logit).
                do_sample=False, temperature=None, top_p=None, top_k=None, repetition_penalty=1.0,
                logits_processor=[limits.processor()] + _row_decoding(torch, requests, self.device, self.tokenizer),
                stopping_criteria=[limits.criteria()] + self._stop_criteria(requests[0].sampling.stop),
                pad_token_id=self.tokenizer.pad_token_id,
            )
        self.generate_seconds += time.perf_counter() - started
        return [self._completion(row, enc.attention_mask[i].sum().item(), r, enc.input_ids.shape[1])
                for i, (row, r) in enumerate(zip(out, requests))]

    def _completion(self, row, prompt_tokens: int, request: ChatRequest, offset: int) -> Completion:
        generated = row[offset:].tolist()
        # generate fills a row that finished early with the pad token, which is not EOS for
        # every model (Gemma's is not): either ends the row's own text.
        ends = self._eos_ids() | ({self.tokenizer.pad_token_id} - {None})
        cut = next((k for k, t in enumerate(generated) if t in ends), None)
        tokens = generated if cut is None else generated[:cut]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        # Rows stopped by their own limit are padded with EOS afterwards: length wins over stop.
        reason = "length" if cut is None or len(tokens) >= request.sampling.max_new_tokens else "stop"
        text, reason = request.sampling.cut(text, reason)
        if self.cancelled:
            reason = "cancelled"
        self.generated_tokens += len(tokens)
        return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(tokens), finish_reason=reason)

    def _stop_criteria(self, stops: tuple[str, ...]) -> list:
        if not stops:
            return []
        from transformers import StopStringCriteria

        return [StopStringCriteria(tokenizer=self.tokenizer, stop_strings=list(stops))]

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _auto_batch_size(self) -> int:
        """CPU: 32 rows. On 2 cores with the embedded model in float32, 200-token rows ran at
        27 tok/s alone, 118 tok/s sixteen at a time and 140 tok/s thirty-two at a time; a batch
        of 16 documents (32 sections ready at once) took 141 s at 32 rows against 158 s at 16.
        GPU: as many rows as a 2k-token KV cache each fits in 80% of free memory, at most 64."""
        if not self.device.startswith("cuda"):
            return 32
        free, _ = self.torch.cuda.mem_get_info()
        cfg = self.model.config
        layers = getattr(cfg, "num_hidden_layers", 32)
        heads = getattr(cfg, "num_key_value_heads", None) or getattr(cfg, "num_attention_heads", 32)
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        per_row = 2 * layers * heads * head_dim * 2048 * 2 * 1.5  # K+V, bf16, 50% for activations
        return int(max(1, min(64, 0.8 * free // per_row)))


def _row_decoding(torch, requests: list[ChatRequest], device, tokenizer) -> list:
    """Each row's repetition penalty and sampler (see ``rowsampling``)."""
    from .rowsampling import RowRepetitionPenalty, RowSampler

    s = [r.sampling for r in requests]
    avoid = [tokenizer(r.avoid, add_special_tokens=False).input_ids if r.avoid else [] for r in requests]
    return [RowRepetitionPenalty(torch, [x.repetition_penalty for x in s], device, avoid),
            RowSampler(torch, [x.temperature for x in s], [x.top_k for x in s], [x.top_p for x in s],
                       [x.seed for x in s], device)]


class _RowLimits:
    """Per-row ``min_new_tokens`` / ``max_new_tokens`` inside one batched generate call, and
    the cancel flag: generate itself only knows one limit for the whole batch."""

    def __init__(self, torch, requests, prompt_len, eos_ids, cancel, tokenizer=None) -> None:
        from .rowsampling import latin_ids, opening_bans, script_rows

        self.torch, self.prompt_len, self.cancel = torch, prompt_len, cancel
        self.mins = [r.sampling.min_new_tokens for r in requests]
        self.openings = [opening_bans(tokenizer, r.sampling.banned_openings) if tokenizer else [] for r in requests]
        self.script_rows = script_rows(requests) if tokenizer else []
        self.latin = latin_ids(tokenizer) if self.script_rows else ()
        self.maxs = torch.tensor([r.sampling.max_new_tokens for r in requests])
        self.eos = sorted(eos_ids)

    def processor(self):
        from .rowsampling import ban, penalise_script

        def forbid_early_eos(input_ids, scores):
            penalise_script(self.torch, scores, self.script_rows, self.latin)
            n = input_ids.shape[1] - self.prompt_len
            rows = [i for i, m in enumerate(self.mins) if n < m]
            if rows and self.eos:
                scores[self.torch.tensor(rows)[:, None], self.torch.tensor(self.eos)[None, :]] = -float("inf")
            if n == 0:  # the reply's first token: no wrapper opening ("Here", "Sure")
                ban(self.torch, scores, list(range(len(self.openings))), self.openings)
            return scores

        return forbid_early_eos

    def criteria(self):
        def row_done(input_ids, scores, **kwargs):
            n = input_ids.shape[1] - self.prompt_len
            done = (self.maxs.to(input_ids.device) <= n)
            return done | self.cancel.is_set()

        return row_done


def recommended_sampling(config) -> dict[str, float]:
    """The temperature and top_p a model's generation config sets itself (most instruct models
    publish them there); transformers' own defaults (temperature 1.0) are not recommendations."""
    set_here = config.to_diff_dict() if config is not None else {}
    return {k: float(set_here[k]) for k in ("temperature", "top_p") if isinstance(set_here.get(k), int | float)}


def check_device(torch, device: str) -> None:
    """Refuse a device this machine lacks with one line, before any weights are read."""
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise ModelError(f"--device {device}: this machine has {count} CUDA GPU(s) usable by torch "
                             f"{torch.__version__}")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ModelError("--device mps: Apple's Metal backend is not available on this machine")
    elif device not in ("cpu", "mps"):
        raise ModelError(f"--device {device}: unknown device (use auto, cpu, mps, cuda or cuda:N)")


def quiet_transformers() -> None:
    """Our own progress display replaces transformers' per-load progress bars and warnings."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def resolve_model(model: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether to stay offline). A local directory is used as
    is; a hub id already in the Hugging Face cache loads without the network; any other id is
    downloaded only if the hub answers, so a machine offline gets one clear line at once
    instead of a minute of retries."""
    if not model.strip():  # Path("") is ".", which would load the current folder as a model
        raise ModelError("the model name is empty")
    local = Path(model).expanduser()
    try:
        if local.is_dir():
            return str(local), True
        exists = local.exists()
    except (OSError, ValueError) as err:  # a name too long for the file system, a NUL...
        raise ModelError(f"model '{model}': {getattr(err, 'strerror', None) or 'invalid path'}") from None
    if exists or model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelError(f"model '{model}': no such directory")
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        raise ModelError(f"model '{model}' is neither a local directory nor a Hugging Face id "
                         "(like 'org/name': letters, digits, '-', '_' and '.')") from None
    if isinstance(try_to_load_from_cache(model, "config.json"), str):
        return model, True
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        raise ModelError(f"model '{model}' is not in the local Hugging Face cache (HF_HUB_OFFLINE is set)")
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        raise ModelError(f"model '{model}' is not a local directory or in the Hugging Face cache, "
                         f"and {host} cannot be reached to download it") from None
    return model, False


def choose_dtype(torch, device: str, requested: str = "auto"):
    """The torch dtype the weights load in: ``requested`` (float32, bfloat16, float16), or for
    ``auto``: bfloat16 on a GPU that has it (else float16); on CPU bfloat16 where the processor
    multiplies bfloat16 natively (AVX512-BF16 or AMX: 32 rows at once ran 2.3x faster than in
    float32 on the stepping engine, prompts 2x to 4.6x; ``benchmarks.dtypes``), else float32
    (bfloat16 converted in software is expected to be slower, not measured); float32 on
    Apple's Metal backend. In bfloat16 a row's rounding can depend on its batch (README)."""
    if requested != "auto":
        if requested not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {requested!r}")
        return getattr(torch, requested)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "cpu" and native_cpu_bf16(torch):
        return torch.bfloat16
    return torch.float32


def native_cpu_bf16(torch) -> bool:
    """True when this processor multiplies bfloat16 in hardware (torch.cpu's capability probes
    are private: a torch without them counts as no)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe is not None and probe() for probe in probes)


def _load(model: str, source: str, local_only: bool, device: str, trust_remote_code: bool, gguf_file: str | None,
          dtype):
    """Load tokenizer and model, turning every loading failure into a one-line ModelError."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    kwargs = {"trust_remote_code": trust_remote_code, "local_files_only": local_only}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except Exception as err:  # the loading boundary: any failure here is the model's, in one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"model '{model}' could not be loaded: {first[:300]}") from None
    tok.padding_side = "left"  # decoder-only batching pads on the left
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok, lm.to(device).eval()
