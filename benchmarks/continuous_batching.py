"""Padded dynamic batching (longwriter's in-process engine) against transformers' own continuous
batching (paged attention, ``init_continuous_batching``), same model, same requests.

    python -m benchmarks.continuous_batching [--requests 16] [--device cpu]

The requests mix lengths as a real run does (drafts, continuations and summaries: 48 to 384
new tokens) and prompt lengths; decoding is greedy and every request generates exactly its
token budget on both sides (end-of-sequence is suppressed), so both produce the same number of
tokens. Printed: wall seconds and tokens/s of each side, and their ratio. With ``--random``
the model is built from its config with random weights (speed does not depend on weight
values): the way to measure on a machine that cannot download weights."""

from __future__ import annotations

import argparse
import asyncio
import time

from longwriter.backends import ChatRequest, Message, Sampling, load_backend

LENGTHS = [384, 48, 192, 96]


def requests(n: int) -> list[ChatRequest]:
    out = []
    for i in range(n):
        words = " ".join(["The coffee trade grew in the ports of the Red Sea."] * (1 + 3 * (i % 5)))
        out.append(ChatRequest(messages=[Message(role="user", content=f"Section {i}: {words} Continue.")],
                               sampling=Sampling(max_new_tokens=LENGTHS[i % len(LENGTHS)],
                                                 min_new_tokens=LENGTHS[i % len(LENGTHS)], temperature=0.0)))
    return out


async def dynamic(backend, reqs: list[ChatRequest]) -> int:
    done = await asyncio.gather(*(backend.complete(r) for r in reqs))
    return sum(c.completion_tokens for c in done)


def continuous(backend, reqs: list[ChatRequest]) -> int:
    """Every request added to transformers' continuous-batching manager at once."""
    from transformers import GenerationConfig

    model, tok = backend.model, backend.tokenizer
    ids = [backend._render(r) for r in reqs]
    ids = [tok(text, add_special_tokens=False).input_ids for text in ids]
    config = GenerationConfig(do_sample=False, max_new_tokens=max(LENGTHS), eos_token_id=None,
                              pad_token_id=tok.pad_token_id)
    manager = model.init_continuous_batching(generation_config=config)
    manager.start()
    try:
        rids = [manager.add_request(x, max_new_tokens=r.sampling.max_new_tokens, eos_token_id=-1)
                for x, r in zip(ids, reqs)]
        outs = [manager.get_result(request_id=rid, timeout=600) for rid in rids]
    finally:
        manager.stop(block=True)
    return sum(len(o.generated_tokens) for o in outs if o is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    backend = load_backend(None, device=args.device, batch_size=args.requests)
    reqs = requests(args.requests)
    print(f"{len(reqs)} requests, {sum(r.sampling.max_new_tokens for r in reqs)} new tokens, "
          f"model {backend.name} on {backend.device}")
    started = time.perf_counter()
    tokens = asyncio.run(dynamic(backend, reqs))
    a = time.perf_counter() - started
    print(f"  padded dynamic batching: {a:6.1f} s, {tokens} tokens, {tokens / a:6.1f} tok/s", flush=True)
    started = time.perf_counter()
    try:
        tokens_b = continuous(backend, reqs)
    except Exception as err:  # noqa: BLE001 - report what the library does on this device
        print(f"  continuous batching: failed ({type(err).__name__}: {str(err).splitlines()[0][:200]})")
        return
    b = time.perf_counter() - started
    print(f"  continuous batching:     {b:6.1f} s, {tokens_b} tokens, {tokens_b / b:6.1f} tok/s")
    print(f"continuous / dynamic: x{(tokens_b / b) / (tokens / a):.2f} in tokens/s")


if __name__ == "__main__":
    main()
