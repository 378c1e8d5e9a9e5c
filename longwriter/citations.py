"""Citations: a section cites the passages its prompt showed as [1], [2], …; a citation that
points to nothing is removed; the assembled document renumbers them across the whole
document, by first use, and ends with a References list of the sources cited (one entry per
file and heading or page, however many passages of it were cited)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import blocks

# A run of citations: [1], [1, 2], [1][2]; not an index such as a[1] or m[2][3] in code.
_CLOSING = ".!?。！？…\"'”’)） \t"  # what ends a sentence after its last word
_CJK_END = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]$")
_RUN = re.compile(r"(?<![\w\]\[])(?:\[\d+(?:\s*[,，、;]\s*\d+)*\])+")


def resolve(text: str, shown: int) -> str:
    """``text`` with its citations split into single markers ("[1, 2]" -> "[1][2]") and every
    marker that points to no shown passage (0, or above ``shown``) removed."""

    def keep(m: re.Match) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", m.group(0))]
        return "".join(f"[{n}]" for n in dict.fromkeys(numbers) if 1 <= n <= shown)

    def tidy(prose: str) -> str:
        out = _RUN.sub(keep, prose)
        return re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", re.sub(r"[ \t]{2,}", " ", out))

    return blocks.prose_map(text, tidy)  # "x = [1]" in code is no citation


def cites(sentence: str) -> bool:
    """Whether ``sentence`` carries a citation marker."""
    return bool(_RUN.search(sentence))


def attach(text: str, marks: Sequence[tuple[str, int]]) -> str:
    """``text`` with marker [n] put at the end of each (sentence, n) of ``marks`` (sentences of
    ``text``, in order), before its closing punctuation: "Bees swarm in May [2]."."""
    out, pos = [], 0
    for sentence, n in marks:
        at = text.find(sentence, pos)
        if at < 0:
            continue
        end = at + len(sentence.rstrip(_CLOSING))
        space = "" if _CJK_END.search(text[at:end]) else " "
        out += [text[pos:end], f"{space}[{n}]"]
        pos = end
    return "".join(out) + text[pos:]


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


def heading_for(language: str) -> str:
    """The References section's heading in the document's language."""
    return "参考资料" if language.lower().startswith("zh") else "References"


def body(document: str, language: str) -> str:
    """``document`` without the References list :func:`references` ended it with (what the
    sections wrote, for measuring citations; the length counts the list too)."""
    m = re.search(rf"\n## {re.escape(heading_for(language))}\n\n(\d+\. [^\n]*\n)+\Z", document)
    return document[: m.start()] if m else document
