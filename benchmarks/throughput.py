"""Throughput: the same outline (8 chapters x 2 sections) with fixed output lengths (min = max
new tokens, so both runs generate exactly the same number of tokens) on the embedded model,
written strictly serially at batch size 1 (AgentWrite's order) versus by the graph scheduler
(chapter policy, every ready section in one batch). Prints words/s, tokens/s, their ratio,
and the share of wall time spent outside the model's generate calls.

    python -m benchmarks.throughput [--tokens 64] [--model ID] [--engine stepping|padded]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from longwriter.backends import load_backend
from longwriter.defaults import DTYPES
from longwriter.pipeline import expand
from longwriter.writer import WriterSettings

from .common import coffee_outline


def run(backend, outline, policy: str, batch_size: int, tokens: int) -> dict:
    settings = WriterSettings(check=False, fixed_tokens=tokens, summarize="all")
    backend.generate_seconds, backend.generated_tokens = 0.0, 0
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = expand(outline, out, backend=backend, settings=settings, policy=policy, concurrency=batch_size)
        wall = time.perf_counter() - started
    words = result.report.produced_words
    return {"policy": policy, "batch": batch_size, "wall": wall, "words": words, "tokens": backend.generated_tokens,
            "words_s": words / wall, "tokens_s": backend.generated_tokens / wall,
            "outside": 1 - backend.generate_seconds / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64, help="new tokens per request (min = max)")
    ap.add_argument("--chapters", type=int, default=8)
    ap.add_argument("--per-chapter", type=int, default=2)
    ap.add_argument("--model", default=None, help="model id or directory (default: embedded)")
    ap.add_argument("--batch", type=int, default=None, help="scheduler batch size (default: automatic)")
    ap.add_argument("--engine", default="auto", choices=["auto", "stepping", "padded"])
    ap.add_argument("--dtype", default="auto", choices=DTYPES, help="the weights' type (auto: see README)")
    args = ap.parse_args()
    backend = load_backend(args.model, engine=args.engine, dtype=args.dtype)
    outline = coffee_outline(args.chapters, args.per_chapter, 60)
    run(backend, coffee_outline(1, 2, 30), "serial", 1, 8)  # warm-up: first calls are slower
    serial = run(backend, outline, "serial", 1, args.tokens)
    graph = run(backend, outline, "chapter", args.batch or backend.batch_size, args.tokens)
    print(f"model: {backend.name}  device: {backend.device}  engine: {backend.engine}  dtype: {backend.report()['dtype']}  outline: {args.chapters}x{args.per_chapter} sections, "
          f"{args.tokens} new tokens per request (sections and summaries)")
    print(f"{'run':<28}{'wall s':>8}{'tokens':>8}{'words':>7}{'tok/s':>8}{'words/s':>9}{'outside generate':>18}")
    for r in (serial, graph):
        name = f"{r['policy']} @ batch {r['batch']}"
        print(f"{name:<28}{r['wall']:>8.1f}{r['tokens']:>8}{r['words']:>7}{r['tokens_s']:>8.1f}{r['words_s']:>9.2f}"
              f"{r['outside']:>17.1%}")
    print(f"speed-up (graph / serial): words/s x{graph['words_s'] / serial['words_s']:.2f}, "
          f"tokens/s x{graph['tokens_s'] / serial['tokens_s']:.2f}  (target >= 3.0)")
    print(f"share of wall time outside generate (graph run): {graph['outside']:.1%}  (target <= 5%)")


if __name__ == "__main__":
    main()
