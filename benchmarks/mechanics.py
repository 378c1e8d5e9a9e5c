"""Output mechanics on the embedded model: meta-talk, language, length. Two parts, each printing
both sides measured in one run.

sampling: the same outlines (planned once per topic) expanded with the checker off under each
sampling setting given (default: longwriter's old 0.7/0.9 against the model card's 0.2/0.9):
share of sections that loop, that drift off the topic, that carried wrapper text or meta-talk
before cleaning, and the mean relevance to the topic.

length: full drafts (checker on) for English and Chinese at one size per bucket (100-500,
500-2,000, 2,000-5,000, 5,000-20,000): the length score of the whole document (headings
included, as LongBench-Write counts it), the share of sections whose drafts carried wrapper
text before cleaning and after it, and the share of Chinese sections not in Chinese.

    python -m benchmarks.mechanics --part sampling [--topics 4] [--words 600]
    python -m benchmarks.mechanics --part length [--only en300,zh1200] [--no-check]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from longwriter.backends import load_backend
from longwriter.checker import accept
from longwriter.language import language_share
from longwriter.length import count_words, length_score
from longwriter.pipeline import draft, expand, make_checker, plan
from longwriter.writer import WriterSettings
from longwriter.wrappers import MetaTalk

TOPICS = ["The history of coffee", "How vaccines train the immune system", "The economics of renewable energy",
          "A beginner's guide to chess openings", "The life cycle of stars", "Why sleep matters for memory"]
SIZES = [("en", 300, "A short guide to brewing pour-over coffee"), ("en", 1200, "The history of the bicycle"),
         ("en", 3000, "How the printing press changed Europe"),
         ("en", 5000, "A practical guide to growing vegetables at home"),
         ("zh", 300, "如何冲一杯手冲咖啡"), ("zh", 1200, "中国茶文化的历史"), ("zh", 3000, "丝绸之路的历史与影响"),
         ("zh", 6000, "城市交通的未来")]
BUCKETS = [(100, 500), (500, 2000), (2000, 5000), (5000, 20000)]


def sampling_part(args) -> None:
    backend, checker, wrappers = load_backend(None), make_checker(), MetaTalk()
    settings = [tuple(float(x) for x in pair.split("/")) for pair in args.settings.split(",")]
    rows = {s: {"loops": [], "off": [], "wrapped": [], "relevance": [], "seconds": 0.0} for s in settings}
    for i, topic in enumerate(TOPICS[: args.topics]):
        outline = plan(topic, words=args.words, backend=backend, seed=i)
        for temperature, top_p in settings:
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                result = expand(outline, out, backend=backend, settings=WriterSettings(
                    check=False, seed=i, temperature=temperature, top_p=top_p))
            row = rows[temperature, top_p]
            row["seconds"] += time.perf_counter() - started
            measure_sections(row, checker, wrappers, outline, result.report.sections)
        print(f"after {i + 1} topic(s): {topic}", flush=True)
    print(f"\n{'sampling (temperature/top_p)':<34}" + "".join(f"{f'{t}/{p}':>12}" for t, p in settings))
    for key, label in (("loops", "sections that loop"), ("off", "sections off the topic"),
                       ("wrapped", "sections with wrapper/meta-talk"), ("relevance", "mean relevance to topic")):
        fmt = "{:>12.3f}" if key == "relevance" else "{:>12.1%}"
        print(f"{label:<34}" + "".join(fmt.format(statistics.fmean(rows[s][key])) for s in settings))
    print(f"{'seconds':<34}" + "".join(f"{rows[s]['seconds']:>12.0f}" for s in settings))


def measure_sections(row: dict, checker, wrappers: MetaTalk, outline, sections) -> None:
    """Loops, drift and wrapper text (cut by the cleaner, or meta-talk left) per section."""
    accepted, by_id = {}, {s.id: s for s in sections}
    for leaf in outline.leaves():
        done = by_id[leaf.id]
        scores = checker.score(done.text, topic=outline.topic, title=leaf.title, brief=leaf.brief, budget=leaf.words,
                               accepted=accepted, language=outline.language)
        accept(accepted, leaf.title, leaf.id, done.text)
        row["loops"].append(checker.looped(scores))
        row["off"].append("off_topic" in scores.problems)
        row["wrapped"].append(bool(done.removed or wrappers.find(done.text)))
        row["relevance"].append(scores.topic_relevance)


def length_part(args) -> None:
    backend, wrappers = load_backend(None), MetaTalk()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    lines = []
    for lang, words, topic in SIZES:
        if only and f"{lang}{words}" not in only:
            continue
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            result = draft(topic, out, words=words, backend=backend, settings=WriterSettings(check=not args.no_check))
        sections = result.report.sections
        produced = count_words(result.document)
        lines.append((lang, words, produced, length_score(words, produced),
                      statistics.fmean(bool(s.removed) for s in sections),
                      statistics.fmean(bool(wrappers.find(s.text)) for s in sections),
                      statistics.fmean(language_share(s.text, lang) < 0.8 for s in sections),
                      len(sections), time.perf_counter() - started))
        print(f"  {lang} {words}: {produced} words, score {lines[-1][3]:.1f}, {lines[-1][-1]:.0f} s", flush=True)
    print(f"\nmodel {backend.name}, sampling {result.report.sampling}")
    print(f"{'lang':<5}{'bucket':>12}{'asked':>7}{'produced':>9}{'score':>7}{'wrapper before':>15}{'after':>7}"
          f"{'wrong lang':>11}{'sections':>9}{'seconds':>8}")
    for lang, words, produced, score, before, after, wrong, n, secs in lines:
        lo, hi = next(b for b in BUCKETS if b[0] <= words < b[1])
        print(f"{lang:<5}{f'{lo}-{hi}':>12}{words:>7}{produced:>9}{score:>7.1f}{before:>15.0%}{after:>7.0%}"
              f"{wrong:>11.0%}{n:>9}{secs:>8.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["sampling", "length"], required=True)
    ap.add_argument("--topics", type=int, default=4)
    ap.add_argument("--words", type=int, default=600)
    ap.add_argument("--settings", default="0.7/0.9,0.2/0.9", help="temperature/top_p pairs, comma-separated")
    ap.add_argument("--only", default="", help="length cases such as en300,zh1200 (default: all)")
    ap.add_argument("--no-check", action="store_true", help="length part: the checker off (faster)")
    args = ap.parse_args()
    (sampling_part if args.part == "sampling" else length_part)(args)


if __name__ == "__main__":
    main()
