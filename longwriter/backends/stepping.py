"""Iteration-level ("continuous") batching for the in-process transformers engine.

A padded ``generate`` call runs until its longest row is done: a 60-token summary that shares
a batch with a 600-token draft waits for it, and nothing new can join. Here the engine decodes
one token at a time for every running row, over one shared KV cache: a row that finishes
leaves at once (its request is answered), and requests that arrived meanwhile are prefilled
and join the running batch before the next step. This is what serving engines do (vLLM,
SGLang); transformers' own paged-attention version measured slower on CPU
(``benchmarks.continuous_batching``), so longwriter keeps its own over the model's plain
``DynamicCache``: rows of different lengths are left-padded and masked, exactly as in a padded
``generate``, and each row keeps its own limits, penalty, sampler and seeded random stream
(``rowsampling``), so a request's text depends only on its prompt and seed.

Models whose cache is not a plain per-layer key/value cache (sliding windows, recurrent state)
are detected at load time and keep the padded ``generate`` path."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .base import ChatRequest, Completion
from .rowsampling import RowSampler, ban, latin_ids, opening_bans, penalise, penalise_script, script_rows, seeded

STOP_WINDOW = 16  # tokens decoded from a row's end to look for its stop strings
ROOM = 256  # free KV-cache columns each layer keeps for the coming decode steps (roomy_layer)


@dataclass
class Row:
    """One request in the running batch."""

    request: ChatRequest
    ticket: Any  # whatever the caller uses to answer the request (a future)
    prompt_tokens: int
    generator: Any
    seen: Any  # bool [vocab]: tokens the repetition penalty covers (prompt, avoid, output)
    generated: list[int] = field(default_factory=list)
    reason: str | None = None  # set when the row is finished
    openings: list[int] = field(default_factory=list)  # token ids its first token may not be


class SteppingEngine:
    """Rows join (``admit``) and leave (``step``) between decode steps of one shared batch."""

    def __init__(self, torch, model, tokenizer, device: str, eos_ids: set[int],
                 render: Callable[[ChatRequest], str], cancelled: Callable[[], bool],
                 account: Callable[[float, int], None] = lambda seconds, tokens: None) -> None:
        self.torch, self.model, self.tokenizer, self.device = torch, model, tokenizer, device
        self.account = account  # (seconds in the model, tokens made): the backend's counters
        self.eos, self.render, self.cancelled = sorted(eos_ids), render, cancelled
        self.rows: list[Row] = []
        self.cache = self.mask = self.last = None  # KV cache, attention mask [rows, S], next inputs [rows, 1]
        # transformers 5 renamed the forward's past_key_values keyword to cache (the old name
        # warns, and goes in 5.40)
        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    @property
    def active(self) -> int:
        return len(self.rows)

    def admit(self, items: list[tuple[ChatRequest, Any]]) -> list[tuple[Any, Completion]]:
        """Prefill new requests and add them to the running batch; returns any that are
        already finished (a one-token limit, an immediate end of sequence)."""
        with self.torch.inference_mode():  # every tensor of the batch lives in inference mode
            return self._admit(items)

    def step(self) -> list[tuple[Any, Completion]]:
        """One token for every running row; returns the requests that finished."""
        with self.torch.inference_mode():
            return self._step()

    def _admit(self, items: list[tuple[ChatRequest, Any]]) -> list[tuple[Any, Completion]]:
        if self.cancelled():  # stopped: answer at once, no prefill
            return [(ticket, Completion.cancelled()) for _, ticket in items]
        torch, started = self.torch, time.perf_counter()
        enc = self.tokenizer([self.render(r) for r, _ in items], return_tensors="pt", padding=True,
                             add_special_tokens=False).to(self.device)
        positions = (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)
        # logits_to_keep=1: only the last position's logits are needed (the vocabulary projection
        # of every prompt token would cost more than the rest of the prefill; generate does the same)
        out = self.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)
        vocab = out.logits.shape[-1]
        rows = [self._row(r, ticket, enc.input_ids[i][enc.attention_mask[i].bool()], vocab)
                for i, (r, ticket) in enumerate(items)]
        tokens = self._choose(rows, out.logits[:, -1, :])
        self._merge(cache_of(out), enc.attention_mask, rows, tokens)
        self.account(time.perf_counter() - started, sum(len(r.generated) for r in rows))
        return self._retire()

    def _step(self) -> list[tuple[Any, Completion]]:
        torch = self.torch
        if self.cancelled():
            for row in self.rows:
                row.reason = "cancelled"
        if any(row.reason for row in self.rows):  # cancelled rows (or callers gone) leave first
            done = self._retire()
            if not self.rows:
                return done
            return done + self._step()
        started = time.perf_counter()
        positions = self.mask.sum(-1, keepdim=True)
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        out = self.model(input_ids=self.last, attention_mask=self.mask, position_ids=positions,
                         use_cache=True, **{self._cache_arg: self.cache})
        self.cache = cache_of(out)
        self.last = self._choose(self.rows, out.logits[:, -1, :])[:, None]
        self.account(time.perf_counter() - started, sum(1 for r in self.rows if r.reason != "stop"))
        return self._retire()

    def drop_all(self) -> list[Row]:
        """Empty the batch (after an engine failure); the rows are returned unanswered."""
        rows, self.rows = self.rows, []
        self.cache = self.mask = self.last = None
        return rows

    # ------------------------------------------------------------------ internals

    def _row(self, request: ChatRequest, ticket, prompt_ids, vocab: int) -> Row:
        seen = self.torch.zeros(vocab, dtype=self.torch.bool, device=self.device)
        avoid = self.tokenizer(request.avoid, add_special_tokens=False).input_ids if request.avoid else []
        seen[prompt_ids] = True
        seen[[i for i in avoid if i < vocab]] = True
        return Row(request, ticket, len(prompt_ids), seeded(self.torch, request.sampling.seed, self.device), seen,
                   openings=opening_bans(self.tokenizer, request.sampling.banned_openings))

    def _choose(self, rows: list[Row], logits):
        """Each row's next token (ids [rows]): its min-length rule, penalty and own sampler;
        then the token is recorded and the row's end checked."""
        torch, scores = self.torch, logits.float()
        early = [i for i, r in enumerate(rows) if len(r.generated) < r.request.sampling.min_new_tokens]
        if early and self.eos:
            scores[torch.tensor(early)[:, None], torch.tensor(self.eos)[None, :]] = -float("inf")
        cjk = script_rows([r.request for r in rows])
        penalise_script(torch, scores, cjk, latin_ids(self.tokenizer) if cjk else ())
        first = [i for i, r in enumerate(rows) if not r.generated and r.openings]  # no "Here"/"Sure" opening
        ban(torch, scores, first, [rows[i].openings for i in first])
        penalties = [r.request.sampling.repetition_penalty for r in rows]
        if any(p != 1.0 for p in penalties):
            scores = penalise(scores, torch.stack([r.seen for r in rows]),
                              torch.tensor(penalties, device=scores.device)[:, None])
        s = [r.request.sampling for r in rows]
        sampler = RowSampler(torch, [x.temperature for x in s], [x.top_k for x in s], [x.top_p for x in s],
                             [x.seed for x in s], scores.device, generators=[r.generator for r in rows])
        tokens = sampler(None, scores).argmax(dim=1)
        for row, token in zip(rows, tokens.tolist()):
            self._record(row, token)
        return tokens

    def _record(self, row: Row, token: int) -> None:
        s = row.request.sampling
        if token in self.eos:
            row.reason = "stop"
            return
        row.generated.append(token)
        row.seen[token] = True
        if len(row.generated) >= s.max_new_tokens:
            row.reason = "length"
        elif s.stop:
            tail = self.tokenizer.decode(row.generated[-STOP_WINDOW:], skip_special_tokens=True)
            if any(stop in tail for stop in s.stop):
                row.reason = "stop"

    def _merge(self, cache, mask, rows: list[Row], tokens) -> None:
        """Add prefilled rows to the running batch: both caches are left-padded to one length."""
        torch = self.torch
        if not self.rows:
            cache.layers = [roomy_layer()(layer.keys, layer.values) for layer in cache.layers]
            self.cache, self.mask, self.last, self.rows = cache, mask, tokens[:, None], rows
            return
        width = max(self.mask.shape[1], mask.shape[1])
        self.cache.layers = [roomy_layer()(
            torch.cat([_pad_left(torch, mine.keys, width, 2), _pad_left(torch, theirs.keys, width, 2)]),
            torch.cat([_pad_left(torch, mine.values, width, 2), _pad_left(torch, theirs.values, width, 2)]))
            for mine, theirs in zip(self.cache.layers, cache.layers)]
        self.mask = torch.cat([_pad_left(torch, self.mask, width, 1), _pad_left(torch, mask, width, 1)])
        self.last = torch.cat([self.last, tokens[:, None]])
        self.rows = self.rows + rows

    def _retire(self) -> list[tuple[Any, Completion]]:
        """Answer and remove the finished rows; cut the cache's all-padding columns."""
        done = [r for r in self.rows if r.reason]
        if not done:
            return []
        keep = [i for i, r in enumerate(self.rows) if not r.reason]
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.cache = self.mask = self.last = None
        else:
            index = self.torch.tensor(keep, device=self.mask.device)
            start = int(self.mask[index].any(0).nonzero()[0])  # columns only departed rows used
            self.cache.layers = [roomy_layer()(layer.keys[index, :, start:], layer.values[index, :, start:])
                                 for layer in self.cache.layers]
            self.mask, self.last = self.mask[index, start:], self.last[index]
        return [(r.ticket, self._completion(r)) for r in done]

    def _completion(self, row: Row) -> Completion:
        text, reason = row.request.sampling.cut(self.tokenizer.decode(row.generated, skip_special_tokens=True),
                                                row.reason)
        return Completion(text=text, prompt_tokens=row.prompt_tokens, completion_tokens=len(row.generated),
                          finish_reason="cancelled" if self.cancelled() else reason)


def _pad_left(torch, tensor, width: int, dim: int):
    """``tensor`` widened to ``width`` along ``dim`` (the sequence: 2 of a cache's [rows, heads,
    S, dim], 1 of a mask's [rows, S]) with zeros on the left, which the mask leaves out."""
    missing = width - tensor.shape[dim]
    after = (0, 0) * (tensor.dim() - 1 - dim)  # F.pad lists the last dimension first
    return tensor if missing == 0 else torch.nn.functional.pad(tensor, (*after, missing, 0))


@functools.cache
def roomy_layer():
    """The class of the running batch's cache layers (built on first use: transformers is
    imported lazily)."""
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        """A DynamicLayer whose keys and values are views into buffers with ROOM free columns
        on the right, so a decode step writes its one column in place. DynamicLayer copies
        the whole cache into a new tensor at every step (torch.cat): 18% of a 32-row step on
        CPU. When the room is used up the buffers are copied once into larger ones."""

        def __init__(self, keys, values) -> None:
            super().__init__()
            self.is_initialized, self.device = True, keys.device
            self._place(keys, values, ROOM)

        def _place(self, keys, values, room: int) -> None:
            length = keys.shape[-2]
            self._keys = keys.new_empty((*keys.shape[:2], length + room, keys.shape[-1]))
            self._values = values.new_empty((*values.shape[:2], length + room, values.shape[-1]))
            self._keys[:, :, :length], self._values[:, :, :length] = keys, values
            self.keys, self.values = self._keys[:, :, :length], self._values[:, :, :length]

        def update(self, key_states, value_states, *args, **kwargs):
            start, end = self.keys.shape[-2], self.keys.shape[-2] + key_states.shape[-2]
            if end > self._keys.shape[-2]:  # room for these columns and ROOM more
                self._place(self.keys, self.values, end - start + ROOM)
            self._keys[:, :, start:end], self._values[:, :, start:end] = key_states, value_states
            self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
            return self.keys, self.values

    return RoomyLayer


def cache_of(out):
    """The KV cache a forward pass returned (``cache`` since transformers 5, before that
    ``past_key_values``)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def supports_stepping(cache) -> bool:
    """True when every layer of ``cache`` (from a forward pass) is a plain growing key/value
    cache, which rows can be added to and removed from."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
