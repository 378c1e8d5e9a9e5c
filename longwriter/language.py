"""Which language a text is written in, measured by script: the share of a text's counted
words (CJK characters, other words) written in the script of the document's language."""

from __future__ import annotations

import re
import unicodedata


# Unicode script names (the first word of a character's name) each language is written in.
_SCRIPTS = {
    "zh": ("CJK",), "ja": ("CJK", "HIRAGANA", "KATAKANA"), "ko": ("HANGUL", "CJK"),
    "ru": ("CYRILLIC",), "uk": ("CYRILLIC",), "bg": ("CYRILLIC",), "sr": ("CYRILLIC", "LATIN"),
    "el": ("GREEK",), "ar": ("ARABIC",), "fa": ("ARABIC",), "he": ("HEBREW",), "hi": ("DEVANAGARI",),
    "th": ("THAI",),
}
_CJK_LIKE = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")  # one counted word per character
_WORD = re.compile(r"\w+")


def scripts_of(language: str) -> tuple[str, ...]:
    """The scripts of a language tag ("zh-Hans" -> CJK); Latin for any tag not listed."""
    return _SCRIPTS.get(language.lower().replace("_", "-").split("-")[0], ("LATIN",))


def script(char: str) -> str:
    try:
        return unicodedata.name(char).split()[0]
    except ValueError:  # unnamed (controls, private use)
        return ""


def _words(text: str):
    """(word, script) for each counted word of ``text``: every CJK-like character on its own,
    any other word by the script of its first letter; numbers belong to no script."""
    for ch in text:
        if script(ch) in _CJK_LIKE:
            yield ch, script(ch)
    for word in _WORD.findall(text):
        letters = [script(ch) for ch in word if ch.isalpha() and script(ch) not in _CJK_LIKE]
        if letters:
            yield word, letters[0]


def language_share(text: str, language: str) -> float:
    """Share of ``text``'s words written in ``language``'s script (1.0 for a text with
    no words). A CJK character counts as one word, as :func:`count_words` counts; any other
    word counts once, by the script of its first letter; numbers do not count."""
    wanted = scripts_of(language)
    found = [name in wanted for _, name in _words(text)]
    return sum(found) / len(found) if found else 1.0


def foreign_words(text: str, language: str) -> list[str]:
    """The words of ``text`` (CJK characters one by one) written in a script ``language`` is
    not written in: "PURCELYLAND" in a Chinese title."""
    wanted = scripts_of(language)
    return [word for word, name in _words(text) if name not in wanted]
