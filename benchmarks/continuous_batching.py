"""Padded dynamic batching (longwriter's in-process engine) against transformers' own continuous
batching (paged attention, ``init_continuous_batching``), same model, same requests.

    python -m benchmarks.continuous_batching [--requests 16] [--device cpu]

The requests mix prompt lengths (48 to 160 tokens) and each generates exactly ``--tokens`` new
tokens on both sides (greedy; end-of-sequence suppressed), so both produce the same tokens.
Uniform output lengths are used because ``generate_batch`` takes one limit for all requests
(per-request limits through the manager's ``add_request`` returned truncated results in
transformers 5.23). Printed: wall seconds and tokens/s of each side, and their ratio."""

from __future__ import annotations

import argparse
import asyncio
import time

from longwriter.backends import ChatRequest, Message, Sampling, load_backend

def requests(n: int, tokens: int) -> list[ChatRequest]:
    out = []
    for i in range(n):
        words = " ".join(["The coffee trade grew in the ports of the Red Sea."] * (1 + 3 * (i % 5)))
        out.append(ChatRequest(messages=[Message(role="user", content=f"Section {i}: {words} Continue.")],
                               sampling=Sampling(max_new_tokens=tokens, min_new_tokens=tokens, temperature=0.0)))
    return out


async def dynamic(backend, reqs: list[ChatRequest]) -> int:
    done = await asyncio.gather(*(backend.complete(r) for r in reqs))
    return sum(c.completion_tokens for c in done)


def continuous(backend, reqs: list[ChatRequest], tokens: int) -> int:
    """All requests through transformers' continuous batching (paged attention)."""
    from transformers import GenerationConfig

    tok = backend.tokenizer
    ids = [tok(backend._render(r), add_special_tokens=False).input_ids for r in reqs]
    config = GenerationConfig(do_sample=False, max_new_tokens=tokens, eos_token_id=None, pad_token_id=tok.pad_token_id)
    outs = backend.model.generate_batch(ids, generation_config=config, max_new_tokens=tokens)
    return sum(len(o.generated_tokens) for o in outs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    backend = load_backend(None, device=args.device, batch_size=args.requests, engine="padded")
    reqs = requests(args.requests, args.tokens)
    print(f"{len(reqs)} requests, {len(reqs) * args.tokens} new tokens, "
          f"model {backend.name} on {backend.device}")
    asyncio.run(dynamic(backend, requests(2, 4)))  # warm both sides up: first calls allocate
    try:
        continuous(backend, requests(2, 4), 4)
    except Exception as err:  # noqa: BLE001 - report what the library does on this device
        print(f"  continuous batching: failed ({type(err).__name__}: {str(err).splitlines()[0][:200]})")
        return
    started = time.perf_counter()
    tokens = asyncio.run(dynamic(backend, reqs))
    a = time.perf_counter() - started
    print(f"  padded dynamic batching: {a:6.1f} s, {tokens} tokens, {tokens / a:6.1f} tok/s", flush=True)
    started = time.perf_counter()
    tokens_b = continuous(backend, reqs, args.tokens)
    b = time.perf_counter() - started
    print(f"  continuous batching:     {b:6.1f} s, {tokens_b} tokens, {tokens_b / b:6.1f} tok/s")
    print(f"continuous / dynamic: x{(tokens_b / b) / (tokens / a):.2f} in tokens/s")


if __name__ == "__main__":
    main()
