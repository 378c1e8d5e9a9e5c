"""What the planner keeps of the model's document title and section briefs: a title that echoes
the request, runs past ~15 words or holds broken words falls back to the cleaned topic; a
brief ends at a sentence boundary within a bound, never mid-word."""

from __future__ import annotations

import re

from .language import foreign_words, language_share
from .length import count_words, is_cjk, split_sentences
from .wrappers import MetaTalk

MAX_TITLE_WORDS = 15  # English words; a CJK title may have twice as many characters
MAX_BRIEF_CHARS = 300
GLUED_REST = 7  # "Coffeethesagement": a topic word with 7+ more letters glued on is a broken word
LONG_WORD = 16  # a word this long that the topic does not have is most likely broken
LONG_NUMBER = 6  # digits: a year or a count fits in fewer; "17598624" in a title is token noise
MIN_BRIEF_SHARE = 0.8  # as the checker's min_language_share
_SMALL = {"a", "an", "the", "of", "to", "in", "on", "and", "or", "for", "at", "by", "with", "vs"}


def document_title(raw: str, topic: str, language: str, wrappers: MetaTalk) -> str:
    """The model's title, cleaned, or :func:`fallback_title` of the topic when it is unusable."""
    # A trailing U+FFFD is a character the token limit cut in half: drop it, keep the title.
    title = next((ln.strip() for ln in raw.replace("\ufffd", "").splitlines() if ln.strip()), "")
    title = re.sub(r"^(title|标题)\s*[:：]\s*", "", title.strip("\"'“”*# "), flags=re.I).strip("\"'“”*#《》 ")
    title = drop_repeated_subtitle(title)
    if title_problem(title, topic, language, wrappers):
        return fallback_title(topic, language)
    return title


def drop_repeated_subtitle(title: str) -> str:
    """The head of a title whose subtitle says it again ("A Guide to Brewing Coffee - A
    Comprehensive Guide to Brewing Coffee" -> "A Guide to Brewing Coffee"): they share three
    words in a row. A subtitle that adds something stays."""
    parts = re.split(r"\s+[-–—|]\s+|[:：]\s*", title, maxsplit=1)
    if len(parts) < 2:
        return title
    grams = [set(zip(*(ws[i:] for i in range(3)))) for ws in ([w.lower() for w in re.findall(r"\w+", p)] for p in parts)]
    return parts[0].strip() if grams[0] & grams[1] else title


def title_problem(title: str, topic: str, language: str, wrappers: MetaTalk) -> str:
    """Why ``title`` is unusable ("" when it is fine)."""
    cjk_doc = language.lower().startswith(("zh", "ja"))
    if not title:
        return "empty"
    if wrappers.title_echo.search(title) or wrappers.find(title):
        return "echoes the request"
    if count_words(title) > MAX_TITLE_WORDS * (2 if cjk_doc else 1):
        return "too long"
    if not in_script(title, topic, language):
        return "in another script"
    return "broken word" if broken_word(title, topic) else ""


def broken_word(title: str, topic: str) -> str:
    """A word of ``title`` that looks broken: glued onto a topic word, camel-cased mid-word, or
    implausibly long (words of the topic itself are fine)."""
    known = {w.lower() for w in re.findall(r"[^\W\d_]+", topic)}
    for word in re.findall(r"[^\W\d_]+", title):
        low = word.lower()
        if low in known or is_cjk(word):
            continue
        glued = any(low.startswith(k) and len(low) - len(k) >= GLUED_REST for k in known if len(k) >= 4)
        if glued or len(word) >= LONG_WORD or re.search(r"[a-z][A-Z]", word):
            return word
    return ""


def in_script(title: str, topic: str, language: str) -> bool:
    """``title`` is written in the document's script: mostly CJK characters for a Chinese or
    Japanese document and not otherwise, with no :func:`stray_words`."""
    cjk_doc = language.lower().startswith(("zh", "ja"))
    return cjk_doc == is_cjk(title) and not stray_words(title, topic, language)


def stray_words(text: str, topic: str, language: str) -> list[str]:
    """Words of ``text`` in another script than the document's, and long numbers, that the topic
    does not have: "PURCELYLAND" and "17598624" in a Chinese title, but "Python" in a title of
    "Python 入门" is the user's own word."""
    known = topic.lower()
    numbers = [n for n in re.findall(r"\d+", text) if len(n) >= LONG_NUMBER]
    return [w for w in foreign_words(text, language) + numbers if w.lower() not in known]


def usable_brief(raw: str, title: str, language: str, wrappers: MetaTalk) -> str:
    """:func:`brief_sentence` of the model's brief when it is in the document's language and
    says nothing about itself; else the section's title, which the writer can always work from
    ("I'm glad you found my explanation helpful." is no brief for a Chinese section)."""
    brief = brief_sentence(raw, wrappers)
    if not brief or wrappers.find(brief) or language_share(brief, language) < MIN_BRIEF_SHARE:
        return title
    return brief


def fallback_title(topic: str, language: str) -> str:
    """The topic as a title: trailing punctuation off, English in title case, at most
    MAX_TITLE_WORDS words."""
    text = topic.strip().rstrip("。.!?！？；;:：")
    if language.lower().startswith(("zh", "ja")) or is_cjk(text):
        return text
    words = text.split()[:MAX_TITLE_WORDS]
    return " ".join(w if (i and w.lower() in _SMALL) or not w[:1].islower() else w[:1].upper() + w[1:]
                    for i, w in enumerate(words))


def brief_sentence(raw: str, wrappers: MetaTalk, limit: int = MAX_BRIEF_CHARS) -> str:
    """The first sentence of the model's brief, wrapper openings removed; a sentence cut off by
    the token limit or longer than ``limit`` ends at its last clause or word boundary within it,
    with a full stop. "" when nothing usable remains."""
    text = wrappers.strip(raw).replace("\n", " ").strip()
    sentences = split_sentences(text)
    if not sentences:
        return ""
    first = sentences[0].strip()
    if re.search(r"[.!?。！？]$", first) and len(first) <= limit:
        return first
    return _cut(first.rstrip(".!?。！？"), limit)


def _cut(text: str, limit: int) -> str:
    """An unfinished sentence (cut off by the token limit, or too long) within ``limit``
    characters: its possibly partial last word dropped, then cut at a clause boundary in its
    second half if there is one, trailing small words removed, ending in a full stop."""
    cjk = is_cjk(text)
    head = text[: limit - 1]
    if not cjk:
        head = head.rsplit(" ", 1)[0] if " " in head else head
    clause = max(head.rfind(c) for c in ",;，；、")
    if clause >= len(head) // 2:
        head = head[:clause]
    head = re.sub(r"[\s,;:，；：、\-–—]+$", "", head)
    while not cjk and " " in head and head.rsplit(" ", 1)[1].lower() in _SMALL:
        head = head.rsplit(" ", 1)[0]
    return (head + ("。" if cjk else ".")) if count_words(head) >= 3 else ""
