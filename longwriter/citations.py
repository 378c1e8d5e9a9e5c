"""Citations: a section cites the passages its prompt showed as [1], [2], …; a citation that
points to nothing is removed; the assembled document renumbers them across the whole
document, by first use, and ends with a References list of the sources cited (one entry per
file and heading or page, however many passages of it were cited)."""

from __future__ import annotations

import re
from collections.abc import Sequence

# A run of citations: [1], [1, 2], [1][2]; not an index such as a[1] or m[2][3] in code.
_RUN = re.compile(r"(?<![\w\]\[])(?:\[\d+(?:\s*[,，、;]\s*\d+)*\])+")


def resolve(text: str, shown: int) -> str:
    """``text`` with its citations split into single markers ("[1, 2]" -> "[1][2]") and every
    marker that points to no shown passage (0, or above ``shown``) removed."""

    def keep(m: re.Match) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", m.group(0))]
        return "".join(f"[{n}]" for n in dict.fromkeys(numbers) if 1 <= n <= shown)

    out = _RUN.sub(keep, text)
    return re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", re.sub(r"[ \t]{2,}", " ", out))


def number(sections: Sequence[tuple[str, Sequence[str]]]) -> tuple[list[str], list[str]]:
    """Renumber across a document. ``sections`` are (text, labels of the passages its [n] refer
    to) in document order; returns the texts with document-wide numbers and the References
    entries in that numbering (a label cited twice keeps its first number)."""
    numbers: dict[str, int] = {}
    texts = []
    for text, labels in sections:
        def renumber(m: re.Match, labels=labels) -> str:
            cited = [int(n) for n in re.findall(r"\d+", m.group(0))]
            new = [numbers.setdefault(labels[n - 1], len(numbers) + 1) for n in cited if 1 <= n <= len(labels)]
            return "".join(f"[{n}]" for n in dict.fromkeys(new))

        texts.append(_RUN.sub(renumber, text))
    return texts, list(numbers)


def references(entries: Sequence[str], heading: str = "References") -> str:
    """The References section's markdown ("" when nothing was cited)."""
    if not entries:
        return ""
    return f"## {heading}\n\n" + "\n".join(f"{i}. {label}" for i, label in enumerate(entries, 1)) + "\n"
