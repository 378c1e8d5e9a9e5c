"""Topic-consistency checker: scores a section for relevance (to its brief and the topic),
redundancy (against sections already accepted), internal degeneration (loops, repeated
sentences) and length, and turns failing scores into feedback for a rewrite."""

from __future__ import annotations

import re
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import citations
from .backends.embeddings import Embedder
from .errors import InputError, OutlineError
from .language import language_share
from .length import count_words, is_cjk, prose_sentences, split_sentences
from .wrappers import MetaTalk


class Thresholds(BaseModel):
    """Pass/fail limits. Defaults were calibrated on the embedded model's drafts (README);
    override any of them from a YAML file with ``--thresholds``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    min_topic_relevance: float = Field(0.30, ge=-1.0, le=1.0, description="cosine(section, topic) at least")
    min_brief_relevance: float = Field(0.30, ge=-1.0, le=1.0, description="cosine(section, title+brief) at least")
    max_redundancy: float = Field(0.70, ge=-1.0, le=1.0, description="cosine to any accepted section at most")
    max_shared_ngrams: float = Field(0.20, ge=0.0, le=1.0, description="share of 4-grams found in an accepted section")
    max_repetition: float = Field(0.20, ge=0.0, le=1.0, description="share of repeated 4-grams inside the section")
    min_length_ratio: float = Field(0.60, ge=0.0, le=10.0, description="words / budget at least")
    min_language_share: float = Field(0.80, ge=0.0, le=1.0,
                                      description="share of words in the document's language's script at least")
    min_support: float = Field(0.56, ge=-1.0, le=1.0, description="a sentence is supported by a source "
                               "passage when their cosine is at least this")
    min_ngram_support: float = Field(0.09, ge=-1.0, le=1.0, description="non-English text (character "
                                     "n-grams): min_support on that scale")
    min_grounding: float = Field(0.0, ge=0.0, le=1.0, description="share of a section's sentences supported by "
                                 "the passages it was shown, at least (0: reported only, see README)")
    min_ngram_relevance: float = Field(0.02, ge=-1.0, le=1.0, description="non-English text (character "
                                       "n-grams): cosine to the topic and to title+brief at least")


def load_thresholds(path: str) -> Thresholds:
    """Thresholds from a YAML mapping of field: value; bad files get a one-line InputError."""
    from .outline import read_yaml

    try:
        data = read_yaml(path)
        if data is None:
            return Thresholds()
        if not isinstance(data, dict):
            raise InputError(f"thresholds file '{path}': must be a mapping of field: value")
        return Thresholds.model_validate(data)
    except OutlineError as err:  # the YAML reader's one-line message
        raise InputError(f"thresholds file '{path}': {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(map(str, first["loc"])) or "file"
        raise InputError(f"thresholds file '{path}', field '{field}': {first['msg']}") from None


class Scores(BaseModel):
    """One section's measurements (all in 0..1 except length_ratio)."""

    topic_relevance: float
    brief_relevance: float
    redundancy: float
    shared_ngrams: float
    repetition: float
    length_ratio: float
    language_share: float = Field(1.0, description="share of words in the document's language")
    meta_talk: list[str] = Field(default_factory=list, description="sentences talking about the text")
    grounding: float | None = Field(None, description="share of its sentences a source passage it was shown "
                                    "supports (None: written without sources)")
    judge: bool | None = None
    embedder: str = Field("", description="what measured relevance and redundancy")
    closest: str = Field("", description="the accepted section it is most similar to")
    problems: list[str] = Field(default_factory=list, description="codes of the thresholds broken: off_topic, "
                                "off_brief, retold (see closest), looped, too_short, wrong_language, "
                                "meta_talk, ungrounded, judged_off")

    @property
    def passed(self) -> bool:
        return not self.problems

    def quality(self) -> float:
        """A single figure for choosing the best of several attempts (higher is better)."""
        length_penalty = abs(1.0 - min(self.length_ratio, 2.0))
        return (self.topic_relevance + self.brief_relevance - self.redundancy - 2 * self.shared_ngrams
                - 2 * self.repetition - 0.5 * length_penalty - (0.5 if self.judge is False else 0.0)
                - 2 * (1.0 - self.language_share) - (0.5 if self.meta_talk else 0.0))


def tokens_for_ngrams(text: str) -> list[str]:
    """Words for Latin text, characters for CJK text (n-grams of either)."""
    if is_cjk(text):
        return [c for c in text if not c.isspace() and c.isalnum()]
    return re.findall(r"\w+", text.lower())


def ngrams(text: str, n: int = 4) -> list[tuple[str, ...]]:
    toks = tokens_for_ngrams(text)
    return [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]


def repetition(text: str, n: int = 4) -> float:
    """Share of the section's n-grams that repeat an earlier n-gram of the same section
    (rep-n); loops and copied sentences push it up, ordinary prose stays low."""
    grams = ngrams(text, n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def shared_ngrams(text: str, others: Iterable[str], n: int = 4) -> float:
    """Largest share of this text's distinct n-grams that also occur in one other text."""
    mine = set(ngrams(text, n))
    if not mine:
        return 0.0
    return max((len(mine & set(ngrams(o, n))) / len(mine) for o in others), default=0.0)


def duplicate_sentences(text: str) -> float:
    """Share of sentences that repeat an earlier sentence verbatim (after normalising)."""
    norm = [re.sub(r"\W+", " ", s.lower()).strip() for s in split_sentences(text)]
    norm = [s for s in norm if s]
    if not norm:
        return 0.0
    counts = Tally(norm)
    return sum(c - 1 for c in counts.values()) / len(norm)


def accept(accepted: dict[str, str], title: str, section_id: str, text: str) -> None:
    """Add a finished section to the ``accepted`` mapping :meth:`Checker.score` compares
    against, labelled by its title (and id, should two sections share a title)."""
    accepted[title if title not in accepted else f"{title} ({section_id})"] = text


class Checker:
    """Scores sections against the topic, their brief, and the sections accepted so far."""

    def __init__(self, english: Embedder, other: Embedder, thresholds: Thresholds | None = None,
                 wrappers: MetaTalk | None = None) -> None:
        self.english, self.other = english, other
        self.thresholds = thresholds or Thresholds()
        self.wrappers = wrappers or MetaTalk()
        self._vectors: dict[tuple[str, str], np.ndarray] = {}

    def encode(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        """Embeddings, each text embedded once per run: accepted sections are compared against
        every later section, and re-embedding them each time made checking O(n^2)."""
        missing = list(dict.fromkeys(t for t in texts if (embedder.name, t) not in self._vectors))
        if len(self._vectors) + len(missing) > 50_000:  # a long-lived checker (a service): stay bounded
            self._vectors.clear()
            missing = list(dict.fromkeys(texts))
        if missing:
            for text, vector in zip(missing, embedder.encode(missing)):
                self._vectors[(embedder.name, text)] = vector
        return np.stack([self._vectors[(embedder.name, t)] for t in texts])

    def embedder_for(self, text: str) -> Embedder:
        return self.other if is_cjk(text) else self.english

    def score(self, text: str, *, topic: str, title: str, brief: str, budget: int,
              accepted: Mapping[str, str], language: str | None = None, passages: Sequence[str] = ()) -> Scores:
        """Measure ``text``, written for a document in ``language`` (default: the topic's);
        ``accepted`` maps the finished sections it must not repeat (by title) to their text."""
        language = language or ("zh" if is_cjk(topic) else "en")
        emb = self.embedder_for(text + topic)
        vectors = self.encode(emb, [text, topic, f"{title}. {brief}", *accepted.values()])
        sims = vectors[3:] @ vectors[0]
        scores = Scores(
            topic_relevance=float(vectors[0] @ vectors[1]),
            brief_relevance=float(vectors[0] @ vectors[2]),
            redundancy=float(sims.max()) if len(sims) else 0.0,
            closest=list(accepted)[int(sims.argmax())] if len(sims) else "",
            shared_ngrams=shared_ngrams(text, accepted.values()),
            repetition=max(repetition(text), duplicate_sentences(text)),
            length_ratio=count_words(text) / max(1, budget),
            language_share=language_share(text, language), meta_talk=self.wrappers.find(text), embedder=emb.name,
            grounding=self.grounding(emb, text, passages) if passages else None,
        )
        scores.problems = self.problems(scores)
        return scores

    def grounding(self, embedder: Embedder, text: str, passages: Sequence[str]) -> float:
        """Share of ``text``'s sentences (of four words or more) whose closest passage reaches
        ``min_support`` cosine: how much of the section its sources back."""
        found, floor = self.support(embedder, text, passages), self.support_floor(embedder)
        return sum(cos >= floor for _, _, cos in found) / len(found) if found else 1.0

    def support_floor(self, embedder: Embedder) -> float:
        """The cosine at which a passage supports a sentence, on ``embedder``'s scale (MiniLM's
        and character n-grams' differ: README, grounding calibration)."""
        return self.thresholds.min_support if embedder is self.english else self.thresholds.min_ngram_support

    def support(self, embedder: Embedder, text: str, passages: Sequence[str]) -> list[tuple[str, int, float]]:
        """Each prose sentence of ``text`` of four words or more (code, tables and lists are
        not claims), with the index of its closest passage and their cosine."""
        sentences = [s.strip() for s in prose_sentences(text) if count_words(s) >= 4]
        if not sentences or not passages:
            return []
        vectors = self.encode(embedder, [*passages, *sentences])
        sims = vectors[len(passages):] @ vectors[: len(passages)].T
        return [(s, int(row.argmax()), float(row.max())) for s, row in zip(sentences, sims)]

    def attribute(self, text: str, passages: Sequence[str]) -> tuple[str, int]:
        """``text`` with a citation [n] attached to each sentence that cites nothing but that
        its n-th shown passage supports (as grounding counts), and
        how many were attached: a small model seldom cites, and a supported claim deserves its
        source. A sentence the model cited keeps its own citations."""
        embedder = self.embedder_for(text)
        found, floor = self.support(embedder, text, passages), self.support_floor(embedder)
        marks = [(s, i + 1) for s, i, cos in found if cos >= floor and not citations.cites(s)]
        return citations.attach(text, marks), len(marks)

    def repeated(self, s: Scores) -> bool:
        """The section retells an accepted one (by meaning or by shared wording)."""
        t = self.thresholds
        return s.redundancy > t.max_redundancy or s.shared_ngrams > t.max_shared_ngrams

    def looped(self, s: Scores) -> bool:
        """The section repeats itself (a loop, or copied sentences)."""
        return s.repetition > self.thresholds.max_repetition

    def problems(self, s: Scores) -> list[str]:
        """The codes of every threshold the scores break (empty: passed), in the order a
        rewrite should address them. Their wording for the model is the ``feedback``
        template's, like every other prompt text."""
        t, out = self.thresholds, []
        ngrams = s.embedder == self.other.name != self.english.name
        if s.topic_relevance < (t.min_ngram_relevance if ngrams else t.min_topic_relevance):
            out.append("off_topic")
        if s.brief_relevance < (t.min_ngram_relevance if ngrams else t.min_brief_relevance):
            out.append("off_brief")
        if self.repeated(s):
            out.append("retold")
        if self.looped(s):
            out.append("looped")
        if s.length_ratio < t.min_length_ratio:
            out.append("too_short")
        if s.language_share < t.min_language_share:
            out.append("wrong_language")
        if s.meta_talk:
            out.append("meta_talk")
        if s.grounding is not None and s.grounding < t.min_grounding:
            out.append("ungrounded")
        if s.judge is False:
            out.append("judged_off")
        return out
