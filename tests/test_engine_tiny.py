"""The real TransformersBackend path (loading, sorting, batch splits, per-row limits, stop
strings, seeds, cancel) on a tiny random-weight model: seconds, no download, no SmolLM2.
Every test runs on both engines: stepping (rows join and leave between decode steps) and
padded (one generate per batch)."""

import asyncio
import threading

import pytest

from longwriter.backends import cpu_thread
from longwriter.backends.base import ChatRequest, Message, Sampling
from longwriter.backends.transformers_backend import TransformersBackend

from .tiny_model import tiny_model_dir, tiny_model_dir_distinct_pad  # noqa: F401


def ask(text: str, **sampling) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], sampling=Sampling(**sampling))


def exact(n: int, text: str = "tell me", **sampling) -> ChatRequest:
    """A greedy request that generates exactly ``n`` tokens (EOS is masked until then)."""
    return ask(text, max_new_tokens=n, min_new_tokens=n, **{"temperature": 0.0, **sampling})


@pytest.fixture(scope="module", params=["stepping", "padded"])
def loaded(tiny_model_dir, request):  # noqa: F811
    """Both in-process engines pass every test of this file."""
    backend = TransformersBackend(str(tiny_model_dir), device="cpu", batch_size=2, engine=request.param)
    assert backend.engine == request.param
    return backend


@pytest.fixture
def one_thread():
    """A model this small runs fastest on one thread (3x faster on a busy 2-core machine)."""
    import torch

    before = cpu_thread.call(torch.get_num_threads)
    cpu_thread.call(torch.set_num_threads, 1)  # where the model computes (see cpu_thread)
    yield
    cpu_thread.call(torch.set_num_threads, before)


@pytest.fixture
def tiny(loaded, one_thread):
    """The tiny model's backend, batch size 2, with no cancel left over from another test."""
    loaded.reset()
    loaded.batch_size = 2
    yield loaded
    loaded.reset()


def test_each_completion_matches_its_own_request_in_order(tiny):
    """Kills: generate returning completions reversed/permuted (prompt lengths are re-sorted
    inside, and batch_size 2 splits the 5 requests over 3 calls)."""
    limits = [7, 3, 11, 5, 9]
    prompts = ["a much longer prompt than the others", "hi", "medium sized prompt", "x", "a fairly long one"]
    reqs = [exact(n, p) for n, p in zip(limits, prompts)]
    out = tiny.generate(reqs)
    assert [c.completion_tokens for c in out] == limits
    assert [c.prompt_tokens for c in out] == [tiny.count_tokens(tiny._render(r)) for r in reqs]
    assert [c.finish_reason for c in out] == ["length"] * 5
    # Greedy texts are the same as each request's own, alone (text mapped to the right row).
    assert [c.text for c in out] == [tiny.generate([r])[0].text for r in reqs]


def test_stop_string_ends_the_text_before_it(tiny):
    """Kills: stop strings ignored (not stopping generation, or not cutting the text), and
    requests with different stops sharing one call (the stop of row 0 used for all)."""
    full = tiny.generate([exact(30)])[0].text
    stop = full[12:15]
    expected = full[: full.index(stop)]
    no_stop, with_stop = tiny.generate([exact(30, "another prompt"), exact(30, stop=(stop,))])
    assert with_stop.text == expected and with_stop.finish_reason == "stop"
    assert with_stop.completion_tokens < 30  # generation itself stopped, not just the text
    assert no_stop.completion_tokens == 30 and no_stop.finish_reason == "length"


def test_finish_reason_is_length_at_the_limit_and_stop_at_eos(tiny):
    """Kills: finish_reason inverted ('stop' <-> 'length')."""
    assert tiny.generate([exact(4)])[0].finish_reason == "length"
    tiny.batch_size = 8
    out = tiny.generate([ask("x" * i, max_new_tokens=40, temperature=0.0) for i in range(1, 9)])
    early = [c for c in out if c.completion_tokens < 40]
    assert early, "no prompt ended with EOS: pick other prompts"
    assert all(c.finish_reason == "stop" for c in early)
    assert all(c.finish_reason == "length" for c in out if c.completion_tokens == 40)


def test_a_seeded_request_writes_the_same_text_alone_and_in_a_batch(tiny):
    """Kills: sampling that depends on batch-mates (shared generator, rows mixed up)."""
    mine = ask("write about coffee", max_new_tokens=20, min_new_tokens=20, temperature=1.0, seed=7)
    alone = tiny.generate([mine])[0].text
    others = [ask("a much longer prompt than mine, really", max_new_tokens=12, temperature=1.3, seed=1),
              ask("hi", max_new_tokens=25, min_new_tokens=25, temperature=0.8, seed=2, repetition_penalty=1.3)]
    tiny.batch_size = 3
    batched = tiny.generate([others[0], mine, others[1]])
    assert batched[1].text == alone
    assert tiny.generate([ask("write about coffee", max_new_tokens=20, min_new_tokens=20, temperature=1.0,
                              seed=8)])[0].text != alone  # the seed matters


def test_cancel_before_generating_reports_cancelled(tiny):
    """Kills: a cancelled backend not reporting 'cancelled' (or not stopping)."""
    tiny.cancel()
    out = tiny.generate([exact(20), exact(20, "other")])
    assert [c.finish_reason for c in out] == ["cancelled"] * 2
    assert all(c.completion_tokens <= 1 for c in out)


def test_cancel_while_generating_stops_every_row(tiny):
    """Kills: the cancel flag not checked between tokens / not reported."""
    calls = []

    def cancel_on_fourth_step(module, args, output):
        calls.append(1)
        if len(calls) == 4:
            tiny.cancel()

    hook = tiny.model.register_forward_hook(cancel_on_fourth_step)
    try:
        out = tiny.generate([exact(30), exact(30, "other")])
    finally:
        hook.remove()
    assert [c.finish_reason for c in out] == ["cancelled"] * 2
    assert all(c.completion_tokens == 4 for c in out)


def test_short_rows_do_not_count_padding_when_pad_is_not_eos(tiny_model_dir_distinct_pad, one_thread):  # noqa: F811
    backend = TransformersBackend(str(tiny_model_dir_distinct_pad), device="cpu", batch_size=4)
    assert backend.tokenizer.pad_token_id not in backend._eos_ids()
    out = backend.generate([exact(3), exact(9, "other")])
    assert [c.completion_tokens for c in out] == [3, 9]


# ---------------------------------------------------------------- the stepping engine only


@pytest.fixture
def stepping(tiny_model_dir, one_thread):  # noqa: F811
    backend = TransformersBackend(str(tiny_model_dir), device="cpu", batch_size=4, engine="stepping")
    return backend


def test_a_short_request_is_answered_while_a_long_one_still_runs(stepping):
    """The point of iteration-level batching: a finished row leaves at once, and a request
    that arrives later joins the running batch instead of waiting for it to end."""
    finished = []

    async def run():
        async def one(name, request, delay=0.0):
            await asyncio.sleep(delay)
            done = await stepping.complete(request)
            finished.append((name, stepping.generated_tokens))
            return done

        return await asyncio.gather(one("long", exact(60)), one("short", exact(5, "other")),
                                    one("late", exact(5, "late prompt"), delay=0.05))

    long, short, late = asyncio.run(run())
    assert [c.completion_tokens for c in (long, short, late)] == [60, 5, 5]
    order = [name for name, _ in finished]
    assert order.index("short") < order.index("long") and order.index("late") < order.index("long")
    assert dict(finished)["late"] < 60 + 5 + 5  # answered before the long row's tokens were all made
    assert late.text == stepping.generate([exact(5, "late prompt")])[0].text  # joining changed nothing


def test_rows_outgrowing_the_caches_room_while_others_join_and_leave_write_what_they_write_alone(stepping):
    """The running batch's cache layers keep ROOM free columns and move to larger buffers when
    a row outgrows them: a long row crossing that point twice, with rows joining and leaving
    around it, writes what it writes alone, and so do they."""
    from longwriter.backends.stepping import ROOM

    requests = [exact(2 * ROOM + 20, "a long one"), exact(7, "short"), exact(ROOM // 2, "middle"),
                exact(30, "late prompt")]

    async def run():
        async def one(request, delay):
            await asyncio.sleep(delay)
            return await stepping.complete(request)

        return await asyncio.gather(*(one(r, 0.05 * k) for k, r in enumerate(requests)))

    together = asyncio.run(run())
    alone = [stepping.generate([r])[0] for r in requests]
    assert [c.completion_tokens for c in together] == [2 * ROOM + 20, 7, ROOM // 2, 30]
    assert [c.text for c in together] == [c.text for c in alone]


def test_rows_beyond_the_batch_size_wait_and_then_join(stepping):
    stepping.batch_size = 2
    seen = []
    stepping.on_batch = lambda stats: seen.append((stats.size, stats.completion_tokens))
    try:
        out = stepping.generate([exact(n, f"prompt {n}") for n in (3, 8, 4, 6, 5)])
    finally:
        stepping.on_batch = None
    assert [c.completion_tokens for c in out] == [3, 8, 4, 6, 5]
    assert max(size for size, _ in seen) == 2 and sum(tokens for _, tokens in seen) == 3 + 8 + 4 + 6 + 5


@pytest.mark.parametrize("fail_at", [1, 3])  # 1: the step right after the rows were admitted
def test_out_of_memory_requeues_the_batch_and_halves_it(stepping, monkeypatch, fail_at):
    """On OOM every running request restarts from its seed at half the rows: same texts, and
    each request answered once (rows admitted in the failing call are not queued twice)."""
    reqs = [ask(f"prompt {i}", max_new_tokens=8, min_new_tokens=8, temperature=1.0, seed=i) for i in range(4)]
    expected = [c.text for c in stepping.generate(reqs)]
    engine = stepping._batcher.engine
    original, calls = engine.step, []

    def failing_step():
        calls.append(1)
        if len(calls) == fail_at:
            raise stepping.torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return original()

    monkeypatch.setattr(engine, "step", failing_step)
    monkeypatch.setattr(stepping.torch.cuda, "empty_cache", lambda: None)
    admitted = []
    original_admit = engine.admit
    monkeypatch.setattr(engine, "admit", lambda items: admitted.extend(items) or original_admit(items))
    assert [c.text for c in stepping.generate(reqs)] == expected
    assert stepping.batch_size == 2
    assert len(admitted) == 4 + 4  # every request admitted once before the failure, once after


def test_an_engine_failure_fails_its_requests_and_the_engine_recovers(stepping, monkeypatch):
    engine = stepping._batcher.engine
    original = engine.step
    monkeypatch.setattr(engine, "step", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        stepping.generate([exact(5), exact(5, "other")])
    monkeypatch.setattr(engine, "step", original)
    assert engine.active == 0 and stepping.generate([exact(5)])[0].completion_tokens == 5


def test_a_request_whose_caller_went_away_leaves_the_batch(stepping):
    engine = stepping._batcher.engine

    async def run():
        doomed = asyncio.ensure_future(stepping.complete(exact(500)))
        await asyncio.sleep(0.05)
        doomed.cancel()
        kept = await stepping.complete(exact(5, "other"))
        return kept

    kept = asyncio.run(run())
    assert kept.completion_tokens == 5 and engine.active == 0
    assert stepping.generated_tokens < 500  # the abandoned row stopped long before its limit


def test_auto_engine_is_stepping_on_cpu_and_batches_continuously(tiny_model_dir):  # noqa: F811
    """Stepping measured at least as fast as padded on CPU (README, Performance); auto picks it
    there, and batch jobs then start writing a document as soon as its plan is ready."""
    auto = TransformersBackend(str(tiny_model_dir), device="cpu", batch_size=2)
    padded = TransformersBackend(str(tiny_model_dir), device="cpu", batch_size=2, engine="padded")
    assert (auto.engine, auto.continuous, padded.continuous) == ("stepping", True, False)


def test_a_banned_opening_word_cannot_be_the_first_token_and_only_its_row_is_steered(tiny):
    """Wrapper openings ("Here", "Sure") are kept out of a reply's first token, per row; later
    tokens are free, and a word of several tokens is not banned (its first piece begins others)."""
    plain = exact(4, "tell me")
    first = tiny.tokenizer(tiny.generate([plain])[0].text, add_special_tokens=False).input_ids[0]
    word = tiny.tokenizer.decode([first])
    assert tiny.tokenizer(word, add_special_tokens=False).input_ids == [first]
    banned = exact(4, "tell me", banned_openings=(word,))
    free, steered = tiny.generate([plain, banned])
    assert tiny.tokenizer(free.text, add_special_tokens=False).input_ids[0] == first
    assert tiny.tokenizer(steered.text, add_special_tokens=False).input_ids[0] != first
    long_word = next(w for w in ("unbelievably", "extraordinarily", "counterrevolutionary")
                     if len(tiny.tokenizer(w, add_special_tokens=False).input_ids) > 1)
    assert tiny.generate([exact(4, "tell me", banned_openings=(long_word,))])[0].text == free.text


def test_a_row_asked_for_chinese_writes_fewer_latin_letters_and_only_its_row_is_steered(tiny):
    """Sampling.script: tokens with Latin letters are penalised in a CJK row, not in others."""
    import re

    from longwriter.backends.rowsampling import latin_ids

    assert latin_ids(tiny.tokenizer) and not set(latin_ids(tiny.tokenizer)) & set(tiny.tokenizer.all_special_ids)
    plain, chinese = exact(24, "tell me"), exact(24, "tell me", script="zh-Hans")
    free, steered = tiny.generate([plain, chinese])
    assert free.text == tiny.generate([plain])[0].text
    latin = lambda text: len(re.findall(r"[A-Za-z]", text))  # noqa: E731
    assert latin(steered.text) < latin(free.text)


def test_on_cpu_every_forward_pass_runs_in_the_one_torch_thread(tiny):
    """libgomp slows every decode step ~1.7x for the process's life once a second thread has
    run torch work (cpu_thread): the model's passes, prefill and decode alike, all run in the
    torch thread, whichever thread asked."""
    threads = set()
    hook = tiny.model.register_forward_pre_hook(lambda module, args: threads.add(threading.get_ident()))
    try:
        tiny.generate([exact(5, "a longer prompt here"), exact(3, "hi")])
        asyncio.run(tiny.complete(exact(2)))
    finally:
        hook.remove()
    assert threads == {cpu_thread.call(threading.get_ident)} != {threading.get_ident()}


def test_the_torch_thread_runs_a_call_made_from_inside_it_at_once():
    inner = cpu_thread.call(lambda: cpu_thread.call(threading.get_ident))  # would wait for itself forever
    assert inner == cpu_thread.call(threading.get_ident) and cpu_thread.inside() is False


def test_sentence_embeddings_asked_from_any_thread_run_in_the_torch_thread(monkeypatch):
    """The checker and the sources' index embed from the event loop's thread or a pool's."""
    from longwriter.backends.embeddings import MiniLMEmbedder

    seen = []
    monkeypatch.setattr(MiniLMEmbedder, "_encode", lambda self, texts: seen.append(threading.get_ident()) or texts)
    MiniLMEmbedder().encode(["tea"])
    asyncio.run(asyncio.to_thread(MiniLMEmbedder().encode, ["tea"]))
    assert seen == [cpu_thread.call(threading.get_ident)] * 2


@pytest.mark.parametrize("name", ["float32", "bfloat16"])
def test_weights_load_in_the_dtype_asked_and_both_engines_write_exact_lengths_and_seeded_text(
        tiny_model_dir, one_thread, name):  # noqa: F811
    """--dtype reaches the weights (and report.json); in either dtype a seeded request writes
    the same text alone and beside others, on both engines."""
    import torch

    mine = ask("write about coffee", max_new_tokens=20, min_new_tokens=20, temperature=1.0, seed=7)
    other = ask("a much longer prompt than mine, really", max_new_tokens=9, min_new_tokens=9, temperature=1.3, seed=1)
    texts = []
    for engine in ("stepping", "padded"):
        backend = TransformersBackend(str(tiny_model_dir), device="cpu", batch_size=2, engine=engine, dtype=name)
        assert {p.dtype for p in backend.model.parameters()} == {getattr(torch, name)}
        assert backend.report() == {"engine": engine, "device": "cpu", "dtype": name, "batch_size": 2}
        assert f"{name} weights on cpu" in backend.notes[0]
        alone = backend.generate([mine])[0]
        batched = backend.generate([other, mine])
        assert [c.completion_tokens for c in batched] == [9, 20] and batched[1].text == alone.text
        texts.append(alone.text)
    assert texts[0] == texts[1]  # the engines agree on the same weights


def test_auto_dtype_is_bfloat16_on_gpus_and_on_cpus_that_multiply_it_natively(monkeypatch):
    """Emulated bfloat16 is slower than float32 on CPU: auto takes it only with hardware
    support (AVX512-BF16 or AMX), and a torch without the probes counts as none."""
    import torch

    from longwriter.backends.transformers_backend import choose_dtype

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False)
    assert choose_dtype(torch, "cpu") is torch.float32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert choose_dtype(torch, "cpu") is torch.bfloat16
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert choose_dtype(torch, "cpu") is torch.float32
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert choose_dtype(torch, "cpu") is torch.float32
    assert choose_dtype(torch, "mps") is torch.float32
    for supported, expected in ((True, torch.bfloat16), (False, torch.float16)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        assert choose_dtype(torch, "cuda:0") is expected
    assert choose_dtype(torch, "cpu", "float16") is torch.float16
    assert choose_dtype(torch, "cuda", "float32") is torch.float32
    with pytest.raises(ValueError, match="dtype must be one of auto, float32, bfloat16, float16"):
        choose_dtype(torch, "cpu", "int8")
