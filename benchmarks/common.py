"""Shared pieces of the benchmarks: fixed outlines (so runs compare like with like) and the
embedded model."""

from __future__ import annotations

from longwriter.outline import Outline, parse_outline

ERAS = ["Origins in Ethiopia", "Yemen and the Sufi monks", "The Ottoman coffeehouse", "Venice and the Europe trade",
        "London's penny universities", "Colonial plantations", "The espresso machine", "Instant coffee and war",
        "The second wave", "Specialty coffee", "Coffee and climate", "The future of the bean"]
ASPECTS = ["People and places", "Trade and money", "Ritual and daily life", "Technology", "Conflicts", "Legacy",
           "Science", "Art and writing"]


def coffee_outline(chapters: int, per_chapter: int, words_per_section: int) -> Outline:
    """A hand-made outline (chapters x sections) on the history of coffee; no planning involved."""
    sections = []
    for i in range(chapters):
        era = ERAS[i % len(ERAS)] + (f" ({i // len(ERAS) + 1})" if i >= len(ERAS) else "")
        kids = [{"id": f"c{i + 1}s{j + 1}", "title": f"{era}: {ASPECTS[j % len(ASPECTS)]}",
                 "brief": f"{ASPECTS[j % len(ASPECTS)]} in the era of {era.lower()}.", "words": 1}
                for j in range(per_chapter)] if per_chapter > 1 else []
        sections.append({"id": f"c{i + 1}", "title": era, "brief": f"Coffee in the era of {era.lower()}.",
                         "words": 1, "children": kids})
    total = chapters * per_chapter * words_per_section
    return parse_outline({"title": "A History of Coffee", "topic": "The history of coffee", "words": total,
                          "sections": sections})
