"""Wrapper text and meta-talk: what a chat model says about its answer instead of writing it
("Here is a rewritten version…", "Sure!", "以下是…", "Hope this helps. Ciao", ``<<Title>>``).

Every generation goes through :meth:`MetaTalk.strip`, which removes such sentences at the start
and end of a text (and marker or heading-like lines at its start); :meth:`MetaTalk.find` names
what is left inside, which fails the checker so the section is rewritten. The word lists are
the ``wrappers`` template's, not Python's."""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import blocks
from .length import count_words, prose_sentences, split_sentences
from .prompts import Prompts

MAX_STRIPPED = 4  # wrapper sentences removed at each end at most: the rest is the section's
_LEAD = re.compile(r"^[\s\"'“”‘’*_#>\-–—:：]+")
_MARKER_LINE = re.compile(r"^\s*(<<.*>>|《.*》|\[.*\]|\*\*[^*]+\*\*|[\"“「].{0,120}[\"”」])\s*[:：]?\s*$")
_SENTENCE_END = re.compile(r"[.!?。！？…\"'”’)\]]\s*$")


class MetaTalk:
    """The wrapper patterns of one template set (``prompts/wrappers.j2``)."""

    def __init__(self, prompts: Prompts | None = None) -> None:
        """Read and compile the lists now: a broken user pattern is refused before a run starts."""
        self.lists = _parse(prompts or Prompts())
        self.opening = _union(self.lists.get("opening", []))
        self.closing = _union(self.lists.get("closing", []))
        self.anywhere = _union(self.lists.get("anywhere", []))
        self.title_echo = _union(self.lists.get("title echoes", []))

    @property
    def banned_openings(self) -> tuple[str, ...]:
        """Words a reply may not start with, for engines that can steer its first token."""
        return tuple(self.lists.get("banned openings", []))

    def strip(self, text: str, titles: Sequence[str] = (), start: bool = True, cuts: list[str] | None = None) -> str:
        """``text`` without the wrapper sentences at its start and end; at the ``start`` of a
        section (not in a continuation, which may open mid-sentence) also without a leading
        heading-like line, marker or repeated title. What was cut is appended to ``cuts``."""
        head = self._strip_head(text.strip(), [t for t in titles if t], start)
        out = self._strip_tail(head)
        if cuts is not None:
            cuts += [piece for piece in (_cut_before(text.strip(), head), head[len(out):].strip()) if piece]
        return out

    def find(self, text: str) -> list[str]:
        """The sentences of ``text`` that still carry meta-talk (empty: clean). Only the
        ``[anywhere]`` patterns count here: an opening or closing formula is wrapper text at a
        section's edge only ("If you have any questions…" ends a reply, not a paragraph)."""
        return [s.strip() for s in prose_sentences(text) if self.anywhere.search(s)]

    def remove(self, text: str) -> str:
        """``text`` without any sentence :meth:`find` names: the last resort for a section whose
        every rewrite kept some."""
        def keep(prose: str) -> str:
            if not prose.strip():
                return prose  # the blank line between two blocks
            return "".join(s for s in split_sentences(prose) if not self.anywhere.search(s))

        return blocks.prose_map(text, keep).strip()

    # ------------------------------------------------------------------ internals

    def _strip_head(self, text: str, titles: list[str], start: bool) -> str:
        for _ in range(MAX_STRIPPED):
            before = text
            if start:
                text = _drop_title(_drop_heading_line(text), titles)
            sentences = split_sentences(text)
            if sentences and blocks.block_in(sentences[0]) is not None:
                break  # a section may open with code or a table: never wrapper text
            first = _LEAD.sub("", sentences[0]) if sentences else ""
            m = self.opening.match(first)
            if m:
                text = _rest_of_opening(first, m) + "".join(sentences[1:])
            text = text.strip()
            if text == before:
                break
        return text

    def _strip_tail(self, text: str) -> str:
        for _ in range(MAX_STRIPPED):
            sentences = split_sentences(text)
            if (len(sentences) < 2 or blocks.block_in(sentences[-1]) is not None
                    or not self.closing.match(_LEAD.sub("", sentences[-1]))):
                break
            text = "".join(sentences[:-1]).rstrip()
        return text


def _parse(prompts: Prompts) -> dict[str, list[str]]:
    """The template's ``[name]`` … ``[name end]`` blocks as lists of lines."""
    lists: dict[str, list[str]] = {}
    current = None
    for line in prompts.render("wrappers").splitlines():
        line = line.strip()
        head = re.fullmatch(r"\[([a-z ]+)\]", line)
        if head and head.group(1).endswith(" end"):
            current = None
        elif head:
            current = lists.setdefault(head.group(1), [])
        elif line and current is not None:
            current.append(line)
    return lists


def _union(patterns: list[str]) -> re.Pattern:
    """One case-insensitive pattern; a list with a broken expression is a PromptError."""
    from .errors import PromptError

    if not patterns:
        return re.compile(r"(?!x)x")  # matches nothing
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    except re.error as err:
        raise PromptError(f"prompt template 'wrappers.j2': bad pattern ({err})") from None


def _drop_heading_line(text: str) -> str:
    """A first line that is a marker (``<<Title>>``, a quoted or bold title) or a heading: short,
    without sentence punctuation, and followed by more text."""
    first, _, rest = text.partition("\n")
    if not rest.strip() or blocks.split(text)[0][0]:  # a first line that opens a block is no heading
        return text
    heading = count_words(first) <= 12 and not _SENTENCE_END.search(first.rstrip("*_ "))
    return rest.strip() if _MARKER_LINE.match(first) or heading else text


def _drop_title(text: str, titles: list[str]) -> str:
    """Text without a leading copy of one of ``titles`` (with its punctuation)."""
    bare = _LEAD.sub("", text)
    for title in titles:
        if bare.lower().startswith(title.lower()) and len(bare) > len(title):
            rest = bare[len(title):]
            # a separator after it, or a new sentence ("Hashing maps keys…" keeps its subject)
            if re.match(r"[\s]*[\"'”*:：.\-–—\n]|\s+[A-Z\u3400-\u9fff]", rest):
                return re.sub(r"^[\s\"'”*:：.\-–—]+", "", rest)
    return text


def _cut_before(text: str, rest: str) -> str:
    """What was cut from the start of ``text`` to leave ``rest`` (which may be re-capitalised)."""
    if not rest:
        return text
    at = text.lower().rfind(rest[:40].lower())
    return text[:at].strip() if at >= 0 else text[: max(0, len(text) - len(rest))].strip()


def _rest_of_opening(sentence: str, match: re.Match) -> str:
    """What a sentence that opens with a wrapper formula keeps: after an interjection ("Sure,
    coffee began…", "好的，咖啡…") the rest; after a formula ("Here it is: Coffee began…") what
    follows its colon on the same line; otherwise nothing."""
    if re.search(r"[!,.:，。！：、]\s*$", match.group(0)):
        rest = sentence[match.end():].lstrip()
        return rest[:1].upper() + rest[1:] if count_words(rest) >= 3 else ""
    m = re.search(r"[:：]\s*(?=\S)", sentence)
    return sentence[m.end():] if m and count_words(sentence[m.end():]) >= 3 else ""
