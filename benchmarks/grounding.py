"""Writing from sources on the embedded model: the same topics drafted without and with the
committed test corpus as --sources, both sides in one run.

Both sides are scored the same way: each section against the passages the sources index picks
for it (its topic, title and brief; what a grounded section's prompt shows). Printed per side:
the mean section grounding score, the share of all sentences a passage supports, citations per
section (the model's own and those longwriter attached to supported sentences), References
entries, and seconds.

    python -m benchmarks.grounding [--words 400] [--no-check]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from longwriter import citations
from longwriter.backends import load_backend
from longwriter.pipeline import draft, make_checker, section_passages
from longwriter.sources import SourceIndex
from longwriter.writer import WriterSettings

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
TOPICS = ["Keeping honey bees: colonies, mites and the honey harvest", "The history and engineering of lighthouses",
          "How volcanoes form and erupt", "中国茶文化的历史"]


def side(topic: str, args, backend, checker, index, sources: list) -> dict:
    """One draft of ``topic`` and its measurements against the index's passages."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = draft(topic, out, words=args.words, backend=backend, checker=checker,
                       settings=WriterSettings(check=not args.no_check), sources=sources)
    seconds = time.perf_counter() - started
    shown = section_passages(index, result.outline, backend.count_tokens)
    grounding, supported, markers = [], [], []
    for leaf, done in zip(result.outline.leaves(), result.report.sections):
        passages = [p.text for p in shown[leaf.id]]
        embedder = checker.embedder_for(done.text)
        found = checker.support(embedder, done.text, passages)
        floor = checker.support_floor(embedder)
        supported += [cos >= floor for _, _, cos in found]
        grounding.append(checker.grounding(embedder, done.text, passages))
        markers.append(len(re.findall(r"\[\d+\]", done.text)))
    body = citations.body(result.document, result.outline.language)
    refs = result.document[len(body):]
    return {"grounding": statistics.fmean(grounding), "supported": statistics.fmean(supported or [0.0]),
            "citations": statistics.fmean(markers), "attached": result.report.attributed_citations / len(markers),
            "references": len(re.findall(r"^\d+\. ", refs, re.M)), "seconds": seconds,
            "words": result.report.produced_words}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=400)
    ap.add_argument("--no-check", action="store_true", help="the checker off on both sides (faster)")
    args = ap.parse_args()
    backend, checker = load_backend(None), make_checker()
    with tempfile.TemporaryDirectory() as folder:
        index = SourceIndex.build([CORPUS], folder, checker.english, print)
    rows = {"without": [], "with": []}
    for topic in TOPICS:
        rows["without"].append(side(topic, args, backend, checker, index, []))
        rows["with"].append(side(topic, args, backend, checker, index, [CORPUS]))
        print(f"{topic}: " + ", ".join(f"{k} sources grounding {r[-1]['grounding']:.2f}" for k, r in rows.items()),
              flush=True)
    print(f"\nmodel {backend.name}, {len(TOPICS)} topics x {args.words} words, checker "
          f"{'off' if args.no_check else 'on'}; corpus {CORPUS.name}/ ({len(index.passages)} passages)")
    print(f"{'':<44}{'without':>10}{'with':>10}")
    for key, label, fmt in (("grounding", "mean section grounding score", "{:>10.3f}"),
                            ("supported", "sentences a passage supports", "{:>10.1%}"),
                            ("citations", "citations per section", "{:>10.2f}"),
                            ("attached", "  of which attached by longwriter", "{:>10.2f}"),
                            ("references", "References entries per document", "{:>10.2f}"),
                            ("words", "words per document", "{:>10.0f}")):
        print(f"{label:<44}" + "".join(fmt.format(statistics.fmean(r[key] for r in rows[s])) for s in rows))
    seconds = {s: sum(r["seconds"] for r in rows[s]) for s in rows}
    print(f"{'seconds (all topics)':<44}{seconds['without']:>10.0f}{seconds['with']:>10.0f}"
          f"   time cost x{seconds['with'] / seconds['without']:.2f}")


if __name__ == "__main__":
    main()
