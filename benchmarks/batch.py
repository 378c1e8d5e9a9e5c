"""Batch: 16 documents of 300 words on the embedded model, written one after another (each
with `draft`, as a script calling longwriter per document would) versus as one batch (all
plans at once, then all sections in one forest on the same engine). Same model object, same
checker, same settings and seeds on both sides; prints words/s per side and their ratio.

    python -m benchmarks.batch [--documents 16] [--words 300] [--no-check] [--engine padded|stepping]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from longwriter.backends import load_backend
from longwriter.defaults import DTYPES
from longwriter.batch import batch
from longwriter.pipeline import draft, make_checker
from longwriter.writer import WriterSettings

TOPICS = ["The history of tea", "How bees make honey", "Lighthouses and their keepers", "The Silk Road",
          "Why the sky is blue", "The invention of the printing press", "How volcanoes form", "The life of octopuses",
          "The history of the bicycle", "How vaccines work", "The Great Wall of China", "Coral reefs in danger",
          "The first computers", "How glaciers shape valleys", "The origins of chess", "Urban gardening"]


def serial(backend, checker, settings, topics, words, root: Path) -> tuple[float, int]:
    started, produced = time.perf_counter(), 0
    for k, topic in enumerate(topics):
        result = draft(topic, root / f"doc{k}", words=words, backend=backend, checker=checker, settings=settings)
        produced += result.report.produced_words
    return time.perf_counter() - started, produced


def batched(backend, checker, settings, topics, words, root: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    result = batch([{"topic": t, "words": words} for t in topics], root, backend=backend, checker=checker,
                   settings=settings)
    wall = time.perf_counter() - started
    return wall, sum(o.words for o in result.outcomes), len(result.failed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--documents", type=int, default=16)
    ap.add_argument("--words", type=int, default=300)
    ap.add_argument("--no-check", action="store_true", help="checker off on both sides")
    ap.add_argument("--model", default=None)
    ap.add_argument("--engine", default="auto", choices=["auto", "stepping", "padded"])
    ap.add_argument("--dtype", default="auto", choices=DTYPES, help="the weights' type (auto: see README)")
    args = ap.parse_args()
    topics = (TOPICS * (args.documents // len(TOPICS) + 1))[: args.documents]
    backend = load_backend(args.model, engine=args.engine, dtype=args.dtype)
    checker = None if args.no_check else make_checker()
    settings = WriterSettings(check=not args.no_check)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        draft("A short note on warm-up runs", root / "warm", words=60, backend=backend, checker=checker,
              settings=settings)  # first calls are slower (and load the checker's model)
        s_wall, s_words = serial(backend, checker, settings, topics, args.words, root / "serial")
        b_wall, b_words, failed = batched(backend, checker, settings, topics, args.words, root / "batch")
    print(f"model: {backend.name}  device: {backend.device}  engine: {backend.engine}  dtype: {backend.report()['dtype']}  "
          f"{len(topics)} documents x {args.words} words, checker {'off' if args.no_check else 'on'}")
    print(f"{'run':<26}{'wall s':>8}{'words':>8}{'words/s':>9}")
    print(f"{'one after another (draft)':<26}{s_wall:>8.1f}{s_words:>8}{s_words / s_wall:>9.2f}")
    print(f"{'one batch':<26}{b_wall:>8.1f}{b_words:>8}{b_words / b_wall:>9.2f}"
          + (f"  ({failed} documents failed)" if failed else ""))
    print(f"speed-up (batch / one after another), words/s: x{(b_words / b_wall) / (s_words / s_wall):.2f}  "
          "(target >= 3.0)")


if __name__ == "__main__":
    main()
