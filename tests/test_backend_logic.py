"""Transformers-backend logic that needs no model weights: OOM halving and per-row limits."""

import pytest
import torch

from longwriter.backends.base import ChatRequest, Completion, Message, Sampling
from longwriter.backends.batching import DynamicBatcher
from longwriter.backends.transformers_backend import TransformersBackend, _RowLimits
from longwriter.errors import ModelError


def bare_backend(monkeypatch, fail_above: int):
    """A TransformersBackend without weights whose chunks 'run out of memory' above a size."""
    backend = object.__new__(TransformersBackend)
    TransformersBackend.__bases__[0].__init__(backend)
    backend.torch, backend.batch_size, backend.sizes = torch, 8, []
    backend._batcher = DynamicBatcher(backend._run_batch, lambda: backend.batch_size, threaded=False)

    def chunk(requests, prompts):
        backend.sizes.append(len(requests))
        if len(requests) > fail_above:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return [Completion(text=p, prompt_tokens=1, completion_tokens=1, finish_reason="stop") for p in prompts]

    backend._generate_chunk = chunk
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    return backend


def test_out_of_memory_halves_the_batch_and_keeps_order(monkeypatch):
    backend = bare_backend(monkeypatch, fail_above=2)
    reqs = [ChatRequest(messages=[Message(role="user", content=str(i))]) for i in range(8)]
    out = backend._generate_halving(reqs, [str(i) for i in range(8)])
    assert [c.text for c in out] == [str(i) for i in range(8)]
    assert backend.sizes[:3] == [8, 4, 2]
    assert backend.batch_size <= 2  # later calls start at the size that fitted


def test_out_of_memory_at_batch_one_is_a_clear_error(monkeypatch):
    backend = bare_backend(monkeypatch, fail_above=0)
    with pytest.raises(ModelError, match="out of GPU memory even at batch size 1"):
        backend._generate_halving([ChatRequest(messages=[Message(role="user", content="x")])], ["x"])


def test_row_limits_mask_eos_until_min_and_stop_each_row_at_its_max():
    import threading

    reqs = [ChatRequest(messages=[], sampling=Sampling(min_new_tokens=3, max_new_tokens=5)),
            ChatRequest(messages=[], sampling=Sampling(min_new_tokens=0, max_new_tokens=2))]
    limits = _RowLimits(torch, reqs, prompt_len=4, eos_ids={0}, cancel=threading.Event())
    ids = torch.zeros((2, 6), dtype=torch.long)  # 2 new tokens so far
    scores = limits.processor()(ids, torch.zeros((2, 10)))
    assert scores[0, 0] == -float("inf") and scores[1, 0] == 0  # row 0 may not end yet
    assert limits.criteria()(ids, scores).tolist() == [False, True]  # row 1 reached its max
    limits.cancel.set()
    assert limits.criteria()(ids, scores).tolist() == [True, True]


def test_row_sampler_keeps_the_same_candidates_as_transformers_warpers():
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from longwriter.backends.rowsampling import RowSampler

    scores = torch.randn(3, 200, generator=torch.Generator().manual_seed(1)) * 3
    ids = torch.zeros((3, 1), dtype=torch.long)
    for temp, k, p in [(0.7, 50, 0.9), (1.0, 0, 0.5), (1.3, 10, 1.0)]:
        ref = scores.clone()
        for warp in (TemperatureLogitsWarper(temp), TopKLogitsWarper(k) if k else None, TopPLogitsWarper(p)):
            ref = warp(ids, ref) if warp else ref
        expected = ref.softmax(dim=1)
        cand, probs = RowSampler(torch, [temp] * 3, [k] * 3, [p] * 3, [0] * 3, "cpu").candidates(scores)
        got = torch.zeros_like(expected).scatter(1, cand, probs)
        assert torch.allclose(got, expected, atol=1e-6), (temp, k, p)


def test_row_sampler_draws_each_row_from_its_own_seed():
    from longwriter.backends.rowsampling import RowSampler

    scores = torch.zeros(4, 1000)  # uniform: the draw is all seed
    ids = torch.zeros((4, 1), dtype=torch.long)

    def draws(seeds, temps=(1.0,) * 4):
        sampler = RowSampler(torch, list(temps), [0] * 4, [1.0] * 4, seeds, "cpu")
        return [sampler(ids, scores.clone()).argmax(dim=1).tolist() for _ in range(5)]

    first = draws([7, 8, 9, 10])
    assert [row[0] for row in draws([7, 1, 2, 3])] == [row[0] for row in first]  # row 0 ignores batch-mates
    assert len({row[0] for row in first}) > 1
    greedy = RowSampler(torch, [0.0], [50], [0.9], [None], "cpu")(ids[:1], torch.arange(10.0)[None, :])
    assert greedy.argmax().item() == 9 and torch.isinf(greedy).sum() == 9


def test_row_repetition_penalty_matches_transformers_per_row():
    from transformers import RepetitionPenaltyLogitsProcessor

    from longwriter.backends.rowsampling import RowRepetitionPenalty

    scores = torch.randn(2, 20, generator=torch.Generator().manual_seed(2))
    ids = torch.tensor([[1, 2, 3], [3, 4, 4]])
    got = RowRepetitionPenalty(torch, [1.2, 1.5], "cpu")(ids, scores.clone())
    for row, pen in enumerate([1.2, 1.5]):
        ref = RepetitionPenaltyLogitsProcessor(pen)(ids[row : row + 1], scores[row : row + 1].clone())
        assert torch.allclose(got[row], ref[0])


def test_avoided_tokens_are_penalised_like_written_ones():
    from longwriter.backends.rowsampling import RowRepetitionPenalty

    scores = torch.full((2, 10), 2.0)
    ids = torch.tensor([[1], [1]])
    out = RowRepetitionPenalty(torch, [2.0, 2.0], "cpu", avoid=[[5, 7], []])(ids, scores.clone())
    assert out[0].tolist() == [2, 1, 2, 2, 2, 1, 2, 1, 2, 2]  # written token 1, avoided 5 and 7
    assert out[1].tolist() == [2, 1, 2, 2, 2, 2, 2, 2, 2, 2]


def test_generate_splits_only_by_stop_strings_and_keeps_request_order(monkeypatch):
    """Kills: group_key returning a constant or every option (and generate ignoring it):
    rows differing in temperature, seed, penalty and limits share one chunk; each distinct
    stop tuple gets its own chunk; results come back in request order."""
    backend = bare_backend(monkeypatch, fail_above=99)
    chunks = []
    backend._render = lambda r: r.messages[-1].content
    backend._generate_chunk = lambda reqs, prompts: chunks.append(sorted(prompts)) or [
        Completion(text=p, prompt_tokens=1, completion_tokens=1, finish_reason="stop") for p in prompts]
    options = [dict(temperature=0.7, seed=1), dict(stop=("\n",)), dict(temperature=0.0, repetition_penalty=1.3),
               dict(stop=("END",), seed=4), dict(max_new_tokens=3, seed=5, top_p=0.5), dict(stop=("\n",), seed=6)]
    reqs = [ChatRequest(messages=[Message(role="user", content=str(i))], sampling=Sampling(**o))
            for i, o in enumerate(options)]
    out = backend.generate(reqs)
    assert [c.text for c in out] == [str(i) for i in range(6)]
    assert sorted(chunks) == [["0", "2", "4"], ["1", "5"], ["3"]]
