"""The in-process engine in float32 against bfloat16 weights, same model, same requests.

    python -m benchmarks.dtypes [--rows 1,16,32,64] [--tokens 64]

Both sides are the embedded model on the stepping engine (the default), loaded once each in
this process and measured in turn for each row count, and take the same requests: prompts of about 120 to 170 tokens, the default
sampling (temperature 0.7, top-p 0.9, repetition penalty 1.15), a seed each and exactly
``--tokens`` new tokens (min = max). For each number of rows sent at once, printed: decoding
(tokens/s of the whole call, prefill included) and prefill alone (prompt tokens/s of the same
requests asked for one token), and the bfloat16 / float32 ratio of each."""

from __future__ import annotations

import argparse
import asyncio
import time

from longwriter.backends import ChatRequest, Message, Sampling
from longwriter.backends.embedded import EMBEDDED_NAME, embedded_model_dir
from longwriter.backends.transformers_backend import TransformersBackend

PASSAGE = "The coffee trade grew in the ports of the Red Sea, and merchants carried it north."


def requests(rows: int, tokens: int) -> list[ChatRequest]:
    """``rows`` requests of mixed prompt lengths, each writing exactly ``tokens`` tokens."""
    return [ChatRequest(messages=[Message(role="system", content="You write sections of a document."),
                                  Message(role="user", content=f"Section {i}: {PASSAGE * (6 + i % 3)} Write it.")],
                        sampling=Sampling(max_new_tokens=tokens, min_new_tokens=tokens, temperature=0.7, top_p=0.9,
                                          repetition_penalty=1.15, seed=i))
            for i in range(rows)]


def timed(backend, reqs: list[ChatRequest]) -> tuple[float, int, int]:
    """(seconds, new tokens, prompt tokens) of sending ``reqs`` at once."""
    async def send():
        return await asyncio.gather(*(backend.complete(r) for r in reqs))

    started = time.perf_counter()
    done = asyncio.run(send())
    return time.perf_counter() - started, sum(c.completion_tokens for c in done), sum(c.prompt_tokens for c in done)


def measure(backend, rows: int, tokens: int) -> dict[str, float]:
    seconds, new, _ = timed(backend, requests(rows, tokens))
    prefill_s, _, prompt = timed(backend, requests(rows, 1))
    return {"decode": new / seconds, "prefill": prompt / prefill_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="1,16,32,64", help="comma-separated rows sent at once")
    ap.add_argument("--tokens", type=int, default=64, help="new tokens per request (min = max)")
    args = ap.parse_args()
    counts = [int(r) for r in args.rows.split(",")]
    backends = {dtype: TransformersBackend(str(embedded_model_dir()), device="cpu", name=EMBEDDED_NAME, dtype=dtype,
                                           batch_size=max(counts)) for dtype in ("float32", "bfloat16")}
    results = {dtype: {} for dtype in backends}
    for backend in backends.values():
        timed(backend, requests(2, 4))  # warm-up: first calls allocate
    for rows in counts:  # the two sides alternate, so a slow minute of the machine hits both
        for dtype, backend in backends.items():
            results[dtype][rows] = measure(backend, rows, args.tokens)
    print(f"model: {EMBEDDED_NAME}  engine: {backends['float32'].engine}  {args.tokens} new tokens per request")
    print(f"{'rows':>5}{'float32 tok/s':>15}{'bfloat16 tok/s':>16}{'ratio':>7}"
          f"{'float32 prefill tok/s':>23}{'bfloat16 prefill tok/s':>24}{'ratio':>7}")
    for rows in counts:
        f, b = results["float32"][rows], results["bfloat16"][rows]
        print(f"{rows:>5}{f['decode']:>15.1f}{b['decode']:>16.1f}{b['decode'] / f['decode']:>6.2f}x"
              f"{f['prefill']:>23.0f}{b['prefill']:>24.0f}{b['prefill'] / f['prefill']:>6.2f}x")


if __name__ == "__main__":
    main()
