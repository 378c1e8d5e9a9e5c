"""Checker effect: for 10 topics on the embedded model, plan once, then expand with the checker
off and on (same outline, same per-section seeds, so a section the checker passes is the same
text in both runs). Does this at each repetition penalty given (default 1.15, longwriter's
default, and 1.0, no penalty, where a small model loops) and prints, side by side: mean relevance
to the topic, mean cross-section redundancy, share of sections with internal loops, and time.
Then the measured distributions the checker's thresholds are calibrated on.

    python -m benchmarks.quality [--topics 10] [--words 1500] [--penalties 1.15,1.0]

About 55 minutes on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict

import numpy as np

from longwriter.backends import load_backend
from longwriter.checker import accept
from longwriter.pipeline import expand, make_checker, plan
from longwriter.writer import WriterSettings

TOPICS = ["The history of coffee", "How vaccines train the immune system", "The economics of renewable energy",
          "A beginner's guide to chess openings", "The life cycle of stars", "Why sleep matters for memory",
          "The rise of electric cars", "Ancient Roman engineering", "How bees make honey",
          "The basics of personal budgeting", "The invention of the telephone", "Coral reefs under threat"]
METRICS = ("relevance", "redundancy", "shared", "loops")


def measure(checker, outline, texts: list[str]) -> dict:
    """Topic relevance, redundancy against earlier sections (document order) and loops, scored
    by the same checker for both runs."""
    rows, accepted = [], {}
    for leaf, text in zip(outline.leaves(), texts):
        rows.append(checker.score(text, topic=outline.topic, title=leaf.title, brief=leaf.brief,
                                  budget=leaf.words, accepted=accepted))
        accept(accepted, leaf.title, leaf.id, text)
    later = rows[1:] or rows  # the first section has nothing to repeat
    return {"relevance": [r.topic_relevance for r in rows], "redundancy": [r.redundancy for r in later],
            "shared": [r.shared_ngrams for r in later],
            "loops": [checker.looped(r) for r in rows]}


def run(outline, backend, checker, *, check: bool, seed: int, penalty: float) -> tuple[list[str], float, int]:
    """One expand: (section texts in outline order, seconds, sections rewritten)."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = expand(outline, out, backend=backend, checker=checker,
                        settings=WriterSettings(check=check, seed=seed, repetition_penalty=penalty))
        seconds = time.perf_counter() - t0
    by_id = {s.id: s for s in result.report.sections}
    texts = [by_id[leaf.id].text for leaf in outline.leaves()]
    return texts, seconds, sum(1 for s in by_id.values() if s.attempts > 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--words", type=int, default=1500)
    ap.add_argument("--penalties", default="1.15,1.0", help="comma-separated repetition penalties")
    args = ap.parse_args()
    penalties = [float(p) for p in args.penalties.split(",")]
    # float32: both sides must draw the same first drafts, and in bfloat16 a request's text can
    # change with its batch-mates (README, Performance: the weights' type)
    backend, checker = load_backend(None, dtype="float32"), make_checker()
    totals = {p: {m: defaultdict(list) for m in ("off", "on")} for p in penalties}
    calib = defaultdict(list)
    for i, topic in enumerate(TOPICS[: args.topics]):
        outline = plan(topic, words=args.words, backend=backend, seed=i)
        drafts = {}
        for p in penalties:
            for mode in ("off", "on"):
                texts, seconds, rewritten = run(outline, backend, checker, check=mode == "on", seed=i, penalty=p)
                t = totals[p][mode]
                for k, v in measure(checker, outline, texts).items():
                    t[k] += v
                t["seconds"].append(seconds)
                t["rewritten"].append(rewritten)
                drafts[p, mode] = texts
        calibrate(calib, checker, outline, drafts, penalties, TOPICS[(i + 5) % len(TOPICS)])
        print(f"\n=== after {i + 1} topic(s), {args.words} words each; last: {topic}", flush=True)
        for p in penalties:
            report(totals[p], p)
        report_calibration(calib, checker)


def calibrate(calib, checker, outline, drafts, penalties, other_topic: str) -> None:
    """Collect what the thresholds are set from, on checker-off drafts: relevance to the
    document's own topic vs an unrelated one, and similarity of two sections of a document vs
    two drafts of the same section (written at two penalties, so independently sampled)."""
    enc = checker.english.encode
    base = enc(drafts[penalties[0], "off"])
    calib["own"] += list(base @ enc([outline.topic])[0])
    calib["other"] += list(base @ enc([other_topic])[0])
    sims = base @ base.T
    calib["pairs_other"] += [float(sims[a, b]) for a in range(len(base)) for b in range(a)]
    if len(penalties) > 1:
        second = enc(drafts[penalties[1], "off"])
        calib["pairs_same"] += [float(x) for x in (base * second).sum(axis=1)]


def report(t, penalty: float) -> None:
    mean = statistics.fmean
    off, on = t["off"], t["on"]
    print(f"\nrepetition penalty {penalty} ({len(off['relevance'])} sections per side)"
          f"{'checker off':>{44 - 24 - len(str(penalty))}}{'checker on':>13}")
    print(f"{'mean relevance to topic (higher is better)':<44}{mean(off['relevance']):>13.3f}{mean(on['relevance']):>13.3f}")
    print(f"{'mean cross-section redundancy (cosine)':<44}{mean(off['redundancy']):>13.3f}{mean(on['redundancy']):>13.3f}")
    print(f"{'mean shared 4-grams with earlier sections':<44}{mean(off['shared']):>13.3f}{mean(on['shared']):>13.3f}")
    print(f"{'sections with internal loops':<44}{mean(off['loops']):>13.1%}{mean(on['loops']):>13.1%}")
    print(f"{'sections rewritten':<44}{sum(off['rewritten']):>13}{sum(on['rewritten']):>13}")
    print(f"{'generation time (s)':<44}{sum(off['seconds']):>13.0f}{sum(on['seconds']):>13.0f}"
          f"   (+{sum(on['seconds']) / sum(off['seconds']) - 1:.0%} with the checker)", flush=True)


def report_calibration(calib, checker) -> None:
    def pct(name, *qs):
        return "  ".join(f"p{q} {np.percentile(calib[name], q):.2f}" for q in qs)

    th = checker.thresholds
    print("\ncalibration (checker-off drafts at the first penalty)")
    print(f"  relevance to own topic       {pct('own', 10, 50)}")
    print(f"  relevance to another topic   {pct('other', 50, 90)}")
    print(f"  -> min_topic_relevance in use {th.min_topic_relevance:.2f}; midpoint own-p10/other-p90 "
          f"{(np.percentile(calib['own'], 10) + np.percentile(calib['other'], 90)) / 2:.2f}")
    print(f"  two sections of a document   {pct('pairs_other', 50, 90)}")
    if calib["pairs_same"]:
        print(f"  two drafts of one section    {pct('pairs_same', 10, 50, 90)}")
    print(f"  -> max_redundancy in use {th.max_redundancy:.2f} (README: set just above different-section p90)",
          flush=True)


if __name__ == "__main__":
    main()
