"""Length control: real drafts on the embedded model for English targets of 300, 1,000, 3,000
and 10,000 words and Chinese targets of 1,000 and 5,000 characters. Prints required, produced
and the length score for each, and the mean (target: mean >= 90, none below 75).

    python -m benchmarks.length [--only en300,zh1000] [--no-check]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from longwriter.backends import load_backend
from longwriter.length import length_score
from longwriter.pipeline import draft
from longwriter.writer import WriterSettings

CASES = [
    ("en", 300, "A short guide to brewing pour-over coffee"),
    ("en", 1000, "The history of the bicycle"),
    ("en", 3000, "How the printing press changed Europe"),
    ("en", 10000, "A practical guide to growing vegetables at home"),
    ("zh", 1000, "中国茶文化的历史"),
    ("zh", 5000, "丝绸之路的历史与影响"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated cases such as en300,zh1000 (default: all)")
    ap.add_argument("--no-check", action="store_true", help="skip the checker (faster)")
    args = ap.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    backend = load_backend(None)
    rows = []
    for lang, target, topic in CASES:
        if only and f"{lang}{target}" not in only:
            continue
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            result = draft(topic, out, words=target, backend=backend, settings=WriterSettings(check=not args.no_check))
        r = result.report
        rows.append((lang, target, r.produced_words, length_score(target, r.produced_words), len(r.sections),
                     time.perf_counter() - started))
        print(f"  {lang} {target}: {r.produced_words} in {len(r.sections)} sections, "
              f"score {rows[-1][3]:.1f}, {rows[-1][5]:.0f} s", flush=True)
    print(f"\nmodel: {backend.name}  checker: {'off' if args.no_check else 'on'}")
    print(f"{'lang':<6}{'required':>10}{'produced':>10}{'score':>8}{'sections':>10}{'seconds':>9}")
    for lang, target, produced, score, n, secs in rows:
        print(f"{lang:<6}{target:>10}{produced:>10}{score:>8.1f}{n:>10}{secs:>9.0f}")
    scores = [r[3] for r in rows]
    print(f"mean length score {sum(scores) / len(scores):.1f}, lowest {min(scores):.1f}  (target: mean >= 90, none < 75)")


if __name__ == "__main__":
    main()
