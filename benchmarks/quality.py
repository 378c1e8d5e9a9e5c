"""Checker effect: for 10 topics on the embedded model, plan once, then expand with the checker
off and on (same outline, same seeds). Prints, side by side: mean relevance to the topic, mean
cross-section redundancy, share of sections with internal loops, and generation time; then the
score distributions used to calibrate the checker's relevance threshold.

    python -m benchmarks.quality [--topics 10] [--words 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from longwriter.backends import load_backend
from longwriter.pipeline import expand, make_checker, plan
from longwriter.writer import WriterSettings

TOPICS = ["The history of coffee", "How vaccines train the immune system", "The economics of renewable energy",
          "A beginner's guide to chess openings", "The life cycle of stars", "Why sleep matters for memory",
          "The rise of electric cars", "Ancient Roman engineering", "How bees make honey",
          "The basics of personal budgeting", "The invention of the telephone", "Coral reefs under threat"]


def measure(checker, outline, sections) -> dict:
    """Topic relevance, redundancy against earlier sections, and loops, by the same checker."""
    rows, accepted = [], []
    for leaf, s in zip(outline.leaves(), sections):
        rows.append(checker.score(s.text, topic=outline.topic, title=leaf.title, brief=leaf.brief,
                                  budget=leaf.words, accepted=accepted))
        accepted.append(s.text)
    later = rows[1:] or rows
    return {"relevance": [r.topic_relevance for r in rows], "redundancy": [r.redundancy for r in later],
            "shared": [r.shared_ngrams for r in later],
            "loops": [r.repetition > checker.thresholds.max_repetition for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--words", type=int, default=500)
    args = ap.parse_args()
    backend, checker = load_backend(None), make_checker()
    totals = {"off": {"relevance": [], "redundancy": [], "shared": [], "loops": [], "seconds": 0.0, "rewritten": 0},
              "on": {"relevance": [], "redundancy": [], "shared": [], "loops": [], "seconds": 0.0, "rewritten": 0}}
    cross = []  # each section scored against another document's topic: what "off-topic" looks like
    for i, topic in enumerate(TOPICS[: args.topics]):
        outline = plan(topic, words=args.words, backend=backend, seed=i)
        for mode in ("off", "on"):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                result = expand(outline, out, backend=backend, checker=checker,
                                settings=WriterSettings(check=mode == "on", seed=i))
                totals[mode]["seconds"] += time.perf_counter() - t0
            m = measure(checker, outline, result.report.sections)
            for k in ("relevance", "redundancy", "shared", "loops"):
                totals[mode][k] += m[k]
            totals[mode]["rewritten"] += sum(1 for s in result.report.sections if s.attempts > 1)
            if mode == "off":
                other = TOPICS[(i + 5) % len(TOPICS)]
                cross += [float(v) for v in checker.english.encode([s.text for s in result.report.sections])
                          @ checker.english.encode([other])[0]]
        print(f"\n=== after {i + 1} topic(s): {topic}", flush=True)
        report(totals, cross, checker)


def report(totals, cross, checker) -> None:
    mean = statistics.fmean
    off, on = totals["off"], totals["on"]
    print(f"\n{'(embedded model, ' + str(len(off['relevance'])) + ' sections per run)':<44}{'checker off':>13}{'checker on':>13}")
    print(f"{'mean relevance to topic (higher is better)':<44}{mean(off['relevance']):>13.3f}{mean(on['relevance']):>13.3f}")
    print(f"{'mean cross-section redundancy (cosine)':<44}{mean(off['redundancy']):>13.3f}{mean(on['redundancy']):>13.3f}")
    print(f"{'mean shared 4-grams with earlier sections':<44}{mean(off['shared']):>13.3f}{mean(on['shared']):>13.3f}")
    print(f"{'sections with internal loops':<44}{mean(off['loops']):>13.1%}{mean(on['loops']):>13.1%}")
    print(f"{'sections rewritten':<44}{off['rewritten']:>13}{on['rewritten']:>13}")
    print(f"{'generation time (s)':<44}{off['seconds']:>13.0f}{on['seconds']:>13.0f}"
          f"   (+{on['seconds'] / off['seconds'] - 1:.0%} with the checker)")
    rel = np.array(off["relevance"])
    print("\ncalibration (checker-off sections): topic relevance percentiles")
    print(f"  own topic    p10 {np.percentile(rel, 10):.2f}  p50 {np.percentile(rel, 50):.2f}")
    print(f"  other topic  p50 {np.percentile(cross, 50):.2f}  p90 {np.percentile(cross, 90):.2f}")
    print(f"  threshold in use: {checker.thresholds.min_topic_relevance:.2f}; midpoint of own-p10 and other-p90: "
          f"{(np.percentile(rel, 10) + np.percentile(cross, 90)) / 2:.2f}", flush=True)


if __name__ == "__main__":
    main()
