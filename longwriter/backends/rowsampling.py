"""Per-row decoding inside one batched ``generate`` call.

transformers applies one temperature, top-k, top-p, repetition penalty and random stream to a
whole batch. A section's rewrite (new seed, higher penalty) would then need its own generate
call, and every sampled text would depend on which other rows shared its batch. These two
logits processors give each row its own options and its own ``torch.Generator``, so any mix of
requests shares one batch and a request's text depends only on its prompt and seed.

The last processor draws the token itself and leaves only that token finite, so ``generate``
runs with ``do_sample=False`` and its argmax picks the draw. Imported lazily (needs torch)."""

from __future__ import annotations

import random
import re
from functools import lru_cache

#: Subtracted from the logits of tokens with Latin letters in a row asked to write a CJK script:
#: a small model asked for Chinese drifts into English; a term it needs still gets through.
SCRIPT_PENALTY = 5.0
CJK_LANGUAGES = ("zh", "ja", "ko")


class RowRepetitionPenalty:
    """transformers' ``RepetitionPenaltyLogitsProcessor`` with one penalty per row: logits of
    tokens already in the row (prompt included) are divided by the penalty when positive and
    multiplied by it when negative (CTRL, Keskar et al. 2019). ``avoid`` adds, per row, tokens
    penalised as if already written (a rewrite must not retell an earlier section)."""

    def __init__(self, torch, penalties: list[float], device, avoid: list[list[int]] | None = None) -> None:
        self.torch = torch
        self.penalty = torch.tensor(penalties, dtype=torch.float32, device=device)[:, None]
        self.active = any(p != 1.0 for p in penalties)
        self.avoid_ids, self.avoid = avoid or [], None

    def __call__(self, input_ids, scores):
        if not self.active:
            return scores
        if self.avoid is None:  # built on the first step, when the logits' width is known
            self.avoid = self.torch.zeros_like(scores, dtype=self.torch.bool)
            for row, ids in enumerate(self.avoid_ids):
                self.avoid[row, [i for i in ids if i < scores.shape[1]]] = True
        return penalise(scores, self.avoid.scatter(1, input_ids, True), self.penalty)


def penalise(scores, seen, penalty):
    """CTRL's repetition penalty on the ``seen`` tokens of each row (``penalty``: one per row,
    shape [rows, 1]): positive logits divided by it, negative ones multiplied."""
    penalty = penalty.to(scores.dtype)
    penalised = scores.where(scores >= 0, scores * penalty).where(scores < 0, scores / penalty)
    return scores.where(~seen, penalised)


def opening_bans(tokenizer, words: tuple[str, ...]) -> list[int]:
    """Token ids a reply may not begin with: each of ``words`` that is one token of the model
    (a word split into pieces is skipped: its first piece also begins ordinary words)."""
    ids = [tokenizer(w, add_special_tokens=False).input_ids for w in words]
    return sorted({i[0] for i in ids if len(i) == 1})


@lru_cache(maxsize=4)
def latin_ids(tokenizer) -> tuple[int, ...]:
    """Ids of the tokens that write Latin letters (special tokens such as the end of a turn
    excepted). Read from the vocabulary once per tokenizer."""
    special = set(tokenizer.all_special_ids)
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return tuple(i for i, piece in enumerate(pieces) if i not in special and piece and re.search(r"[A-Za-z]", piece))


def script_rows(requests) -> list[int]:
    """The rows whose request asks for a CJK script (``Sampling.script``)."""
    return [i for i, r in enumerate(requests) if r.sampling.script.split("-")[0].lower() in CJK_LANGUAGES]


def penalise_script(torch, scores, rows: list[int], ids: tuple[int, ...]):
    """Lower, in ``rows``, the logits of the tokens ``ids`` (Latin letters) by SCRIPT_PENALTY."""
    if rows and ids:
        index = torch.tensor([i for i in ids if i < scores.shape[1]], device=scores.device)
        scores[torch.tensor(rows, device=scores.device)[:, None], index[None, :]] -= SCRIPT_PENALTY
    return scores


def ban(torch, scores, rows: list[int], ids: list[list[int]]):
    """Forbid, in each of ``rows``, its own list of token ids (in place)."""
    for row, banned in zip(rows, ids):
        if banned:
            scores[row, [i for i in banned if i < scores.shape[1]]] = -float("inf")
    return scores


def seeded(torch, seed: int | None, device):
    """A row's own random stream; a request without a seed gets one from Python's RNG."""
    return torch.Generator(device=device).manual_seed(seed if seed is not None else random.getrandbits(63))


class RowSampler:
    """Temperature, then top-k, then top-p (transformers' order), then one draw per row from
    that row's own generator; rows with temperature 0 take the argmax."""

    def __init__(self, torch, temperatures: list[float], top_ks: list[int], top_ps: list[float],
                 seeds: list[int | None], device, generators: list | None = None) -> None:
        self.torch = torch
        self.temperature = torch.tensor([t if t > 0 else 1.0 for t in temperatures], device=device)[:, None]
        self.greedy = [t <= 0 for t in temperatures]
        self.top_k, self.top_p = top_ks, torch.tensor(top_ps, device=device)[:, None]
        self.generators = generators or [seeded(torch, s, device) for s in seeds]

    def candidates(self, scores):
        """Each row's candidate tokens (ids, probabilities), best first, after top-k/top-p."""
        torch = self.torch
        logits = scores.float() / self.temperature
        k = logits.shape[1] if min(self.top_k) <= 0 else min(max(self.top_k), logits.shape[1])
        values, ids = logits.topk(k, dim=1)  # sorted, so top-p can work on a cumulative sum
        ranks = torch.arange(k, device=logits.device)[None, :]
        row_k = torch.tensor([kk if kk > 0 else k for kk in self.top_k], device=logits.device)[:, None]
        values = values.masked_fill(ranks >= row_k, -float("inf"))
        probs = values.softmax(dim=1)
        # Drop a candidate once the ones before it already hold top_p of the mass (keeps the first).
        before = probs.cumsum(dim=1) - probs
        probs = probs.masked_fill(before >= self.top_p, 0.0)
        return ids, probs / probs.sum(dim=1, keepdim=True)

    def __call__(self, input_ids, scores):
        torch = self.torch
        ids, probs = self.candidates(scores)
        picks = []
        for row, gen in enumerate(self.generators):
            if self.greedy[row]:
                picks.append(ids[row, 0])
            else:
                picks.append(ids[row, torch.multinomial(probs[row], 1, generator=gen)[0]])
        chosen = torch.stack(picks)[:, None]
        out = torch.full_like(scores, -float("inf"))
        return out.scatter(1, chosen, 0.0)
