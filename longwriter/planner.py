"""The planner: topic -> outline, from the model itself. Small models do not emit valid JSON
reliably, but they continue a numbered list well, so the list so far is prefilled ("1. A\n2.")
and the model writes just the next line; a duplicate or unusable line is re-sampled (bounded).
The code decides only the outline's shape and budgets."""

from __future__ import annotations

import asyncio
import re

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from . import defaults
from .backends.base import Backend, ChatRequest, Completion, Message, Sampling
from .errors import InputError, Interrupted, PlanningError
from .length import is_cjk
from .outline import (MAX_TOPIC_CHARS, MAX_WORDS, MIN_LEAF_WORDS, Outline, Section, distribute, normal_topic,
                      rebalance, slugify)
from .prompts import Prompts
from .templates import Template, TemplateSection
from .templates import load as load_template
from .titling import document_title, in_script, usable_brief
from .wrappers import MetaTalk

MAX_SEED = defaults.MAX_SEED
MIN_SUBSECTION_WORDS = 120  # a template section is subdivided only when each part gets this many
BRIEF_TOKENS = 80  # one sentence; a longer one is cut at a boundary (titling.brief_sentence)


class PlanRequest(BaseModel):
    """What the user asks the planner for. Invalid requests are refused with one line
    (:class:`InputError`) when built, before any model loads."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    words: int = Field(1200, gt=0, le=MAX_WORDS)
    audience: str = Field(defaults.AUDIENCE, max_length=300)
    style: str = Field(defaults.STYLE, max_length=300)
    language: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
    sections: int | None = Field(None, gt=0, le=defaults.MAX_SECTIONS, description="top-level sections (default: from words)")
    depth: int | None = Field(None, ge=1, le=2, description="1 = flat, 2 = chapters with sections")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    max_attempts: int = Field(4, ge=1, le=20)
    template: str | None = Field(None, min_length=1, max_length=4096, description="a built-in template or a YAML file")
    _template: Template | None = PrivateAttr(None)

    def __init__(self, **data) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            first = err.errors()[0]
            field, msg = ".".join(map(str, first["loc"])), first["msg"].removeprefix("Value error, ")
            raise InputError(f"{field}: {msg}" if field else msg) from None

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        return check_topic(value)

    @model_validator(mode="after")
    def _room_per_section(self) -> PlanRequest:
        if self.template:  # the template fixes the sections: load_template checks their room
            if self.sections or self.depth:
                raise ValueError("--sections and --depth do not apply with a template: it fixes the sections")
            return self
        top, sub = shape(self.words, self.sections, self.depth)
        if self.words < top * sub * MIN_LEAF_WORDS:
            raise ValueError(f"{self.words} words over {top * sub} sections leaves under {MIN_LEAF_WORDS} words "
                             f"a section; ask for at most {max(1, self.words // MIN_LEAF_WORDS)} sections")
        return self

    @property
    def document_language(self) -> str:
        """The language asked for, else the topic's (zh for a Chinese topic, else en)."""
        return self.language or ("zh" if is_cjk(self.topic) else "en")

    def load_template(self) -> Template | None:
        """The template this request names (built-in, in the document's language, or a file),
        checked to leave every section room; None without one. One-line errors."""
        if not self.template:
            return None
        if self._template is None:  # read once: validation and planning see the same file
            template = load_template(self.template, self.document_language)
            shares = [s.share for s in template.sections]
            if min(distribute(max(self.words, len(shares)), shares)) < 2 * MIN_LEAF_WORDS:
                need = -(-2 * MIN_LEAF_WORDS * sum(shares) // min(shares))
                raise InputError(f"{self.words} words are too few for template '{template.name}' "
                                 f"({len(shares)} sections); ask for at least {need}")
            self._template = template
        return self._template


def check_topic(topic: str) -> str:
    """The topic, stripped; empty, absurdly long or undecodable topics are refused."""
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8 on the command line (surrogates)
        raise InputError("the topic is not valid UTF-8 text") from None
    if _CONTROL.search(topic):
        raise InputError("the topic contains control characters; pass plain text") from None
    topic = normal_topic(topic)
    if not topic:
        raise InputError("the topic is empty; pass --topic \"what the document is about\"")
    if len(topic) > MAX_TOPIC_CHARS:
        raise InputError(f"the topic is {len(topic)} characters long; keep it under {MAX_TOPIC_CHARS}")
    return topic


def shape(words: int, sections: int | None, depth: int | None) -> tuple[int, int]:
    """(top-level sections, subsections per top-level section). About 230 words per leaf: a
    300-word piece gets 2 sections, 1,200 words 5, and longer documents chapters of 3 to 5
    sections. Many short chapters rather than a few long ones keep the chapters-in-parallel
    schedule wide (3,000 words: 4 x 3; 10,000: 11 x 4; 20,000: 17 x 5)."""
    leaves = max(2, min(120, round(words / 230)))
    per = 3 if leaves < 30 else 4 if leaves < 60 else 5
    top = sections or (leaves if leaves <= 8 else max(2, round(leaves / per)))
    if depth is None:
        depth = 2 if leaves >= 2 * top else 1
    return (top, 1) if depth == 1 else (top, max(2, round(leaves / top)))


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # \t\n\v\f\r are whitespace, folded away
_WEAK_ENDINGS = {"a", "an", "the", "of", "to", "in", "on", "and", "or", "as", "for", "from", "with", "by", "its", "their"}


def clean_title(line: str) -> str:
    """One title from a generated list line: markdown, quotes and any trailing description
    ("Title - what it covers", "Title: ...", "Title (notes)") removed; '' if unusable."""
    # U+FFFD: half a character the token limit or byte-level decoding left; never part of a title.
    line = line.replace("\ufffd", "").strip()
    line = line.splitlines()[0] if line else ""
    line = re.sub(r"[*_`#]+", "", line)
    line = re.split(r"\s+[-–—]\s+|[:;(（：；]|\.\s", line)[0]
    line = line.strip(" \"'“”.,-")
    words = line.split()
    if len(words) > 10:  # a sentence, not a title: keep its head, ending on a content word
        words = words[:10]
        while words and words[-1].lower() in _WEAK_ENDINGS:
            words.pop()
        line = " ".join(words)
    return line if 3 <= len(line) <= 100 else ""


def _key(title: str) -> str:
    return re.sub(r"\W+", "", title.lower()).removeprefix("the")


def _duplicate(title: str, siblings: list[str], parent: str | None, topic: str) -> bool:
    """A title that says nothing new: contained in a sibling (ignoring case and punctuation),
    equal to its parent, or, at the top level, only a piece of the topic itself ("History of
    coffee" for "The history of coffee"; "Coffee in Yemen" narrows it and is fine)."""
    k = _key(title)
    if not k or any(k in _key(o) for o in siblings) or k in (_key(parent or ""), _key(topic)):
        return True
    return parent is None and k in _key(topic)


def _in_script(title: str, topic: str, language: str) -> bool:
    """A Chinese document's titles must be mostly Chinese characters, and no title may carry
    words of another script (or long numbers) the topic does not have: a small model asked in
    Chinese sometimes answers in English, and the sections would follow the titles."""
    return bool(title) and in_script(title, topic, language)


class Planner:
    """Turns a :class:`PlanRequest` into a validated :class:`Outline` using the backend."""

    def __init__(self, backend: Backend, prompts: Prompts) -> None:
        self.backend, self.prompts = backend, prompts
        self.wrappers = MetaTalk(prompts)
        self.sources: list[str] = []

    def echoes(self, title: str, topic: str) -> bool:
        """A section title that talks about the request or the text instead of naming a subject
        ("The two sections title should match…", "The article provides information about…"):
        the ``[title echoes]`` and ``[anywhere]`` lists, unless the topic has the same words."""
        found = [m.group(0) for m in self.wrappers.title_echo.finditer(title)]
        return any(w.lower() not in topic.lower() for w in found) or bool(self.wrappers.find(title))

    def render(self, name: str, **values) -> str:
        """The template in the document's language where one exists (``plan_titles.zh``)."""
        return self.prompts.render(self.prompts.localized(name, self.language), **values)

    async def plan(self, req: PlanRequest, sources: list[str] | None = None,
                   template: Template | None = None) -> Outline:
        """The outline for ``req``; ``sources``: lines describing the user's sources (their
        headings and best passages, bounded), so the outline covers what they cover; with a
        ``template``, its top-level sections, budget shares and contents are kept."""
        self.sources = sources or []
        topic = check_topic(req.topic)
        language = req.document_language
        audience, style = _from_template(req, template)
        self.language = language
        self.system = self.render("system", style=style, audience=audience, language=language)
        skeleton = _skeleton(template, req) if template else None
        if skeleton:
            tops, subs = await self._template_titles(skeleton, topic, req)
        else:
            top_n, sub_n = shape(req.words, req.sections, req.depth)
            tops = (await self.titles([(None, top_n)], topic, req))[0]
            subs = await self.titles([(t, sub_n) for t in tops], topic, req) if sub_n > 1 else [[] for _ in tops]
        known = {(s.title, None): s.brief for s in template.sections if s.brief} if template else {}
        title, briefs = await self.briefs(topic, tops, subs, req, known)
        sections = self.assemble(tops, subs, briefs, req.words, skeleton)
        return rebalance(Outline(title=title, topic=topic, audience=audience, style=style,
                                 language=language, words=req.words, sections=sections))

    async def _template_titles(self, skeleton: list[tuple[TemplateSection, int, int]], topic: str,
                               req: PlanRequest) -> tuple[list[str], list[list[str]]]:
        """The template's own titles, and subsection titles for those it subdivides."""
        tops = [part.title for part, _, _ in skeleton]
        asks = [(part.title, n) for part, _, n in skeleton if n > 1]
        found = iter(await self.titles(asks, topic, req) if asks else [])
        return tops, [next(found) if n > 1 else [] for _, _, n in skeleton]

    async def _complete(self, requests: list[ChatRequest]) -> list[Completion]:
        """All requests at once (the engine batches them); Ctrl-C stops planning too."""
        done = await asyncio.gather(*(self.backend.complete(r) for r in requests))
        if self.backend.cancelled:
            raise Interrupted("stopped by the user while planning; nothing was saved")
        return list(done)

    def _ask(self, user: str, max_tokens: int, seed: int, prefill: str = "") -> ChatRequest:
        return ChatRequest(messages=[Message(role="system", content=self.system), Message(role="user", content=user)],
                           prefill=prefill, sampling=Sampling(max_new_tokens=max_tokens, temperature=defaults.TEMPERATURE,
                                                              repetition_penalty=1.2, seed=seed, script=self.language))

    async def titles(self, asks: list[tuple[str | None, int]], topic: str, req: PlanRequest) -> list[list[str]]:
        """For each (parent title or None, n): n distinct titles. The list format is enforced by
        the prefill: each round the model writes just the next numbered line of every list still
        short, all lists in one batch; a duplicate or unusable line is re-sampled (bounded)."""
        found: list[list[str]] = [[] for _ in asks]
        misses = [0] * len(asks)
        for rnd in range(max(n for _, n in asks) * req.max_attempts):
            todo = [i for i, (_, n) in enumerate(asks) if len(found[i]) < n and misses[i] < n * req.max_attempts]
            if not todo:
                break
            batch = [self._title_request(asks[i], found[i], topic, req, seed=(req.seed + rnd) % (MAX_SEED + 1)) for i in todo]
            for i, done in zip(todo, await self._complete(batch)):
                title = clean_title(done.text)
                if (title and not _duplicate(title, found[i], asks[i][0], topic)
                        and _in_script(title, topic, self.language) and not self.echoes(title, topic)):
                    found[i].append(title)
                else:
                    misses[i] += 1
        for (parent, n), got in zip(asks, found):
            # A chapter keeps whatever distinct subtitles it got (none or one: it is written as one
            # section); the document's own list may fall short by half at most.
            if not parent and len(got) < max(1, (n + 1) // 2):
                raise PlanningError(f"the model gave {len(got)} distinct titles for the document (needed {n}); "
                                    "try a smaller --sections or a larger --model")
        return found

    def _title_request(self, ask: tuple[str | None, int], have: list[str], topic: str, req: PlanRequest,
                       seed: int) -> ChatRequest:
        parent, n = ask
        user = self.render("plan_titles", topic=topic, words=req.words, parent=parent or "", n=n,
                           sources=self.sources)
        listed = "".join(f"{k}. {t}\n" for k, t in enumerate(have, 1))
        request = self._ask(user, 24, seed, prefill=f"{listed}{len(have) + 1}.")
        request.sampling = request.sampling.model_copy(update={"stop": ("\n",), "temperature": 0.8})
        return request

    async def briefs(self, topic: str, tops: list[str], subs: list[list[str]], req: PlanRequest,
                     known: dict | None = None):
        """The document title and a one-sentence brief per section (those in ``known`` are
        kept as given), in one batch."""
        known = known or {}
        pairs = [(t, None) for t in tops] + [(s, t) for t, ss in zip(tops, subs) for s in ss]
        asked = [pair for pair in pairs if pair not in known]
        batch = [self._ask(self.render("doc_title", topic=topic), 24, req.seed)]
        batch += [self._ask(self.render("brief", topic=topic, title=t, parent=p or ""), BRIEF_TOKENS, req.seed)
                  for t, p in asked]
        out = await self._complete(batch)
        title = document_title(out[0].text, topic, self.language, self.wrappers)
        made = {pair: usable_brief(c.text, pair[0], self.language, self.wrappers) for pair, c in zip(asked, out[1:])}
        return title, {**made, **known}

    def assemble(self, tops: list[str], subs: list[list[str]], briefs: dict, words: int,
                 skeleton: list | None = None) -> list[Section]:
        """Sections with unique slug ids and budgets split evenly, or by the template's shares
        (rebalanced afterwards); a template section's contents pass to its subsections."""
        used: set[str] = set()

        def make_id(title: str, fallback: str) -> str:
            base = slugify(title, fallback)[:32].strip("-") or fallback
            sid, k = base, 2
            while sid in used:
                sid, k = f"{base}-{k}", k + 1
            used.add(sid)
            return sid

        contents = [_contents(part.contains) for part, _, _ in skeleton] if skeleton else [[] for _ in tops]
        sections = []
        for i, (top, children, contains) in enumerate(zip(tops, subs, contents), 1):
            children = children if len(children) > 1 else []  # one subsection is no subdivision
            kids = [Section(id=make_id(s, f"s{i}-{j}"), title=s, brief=briefs[(s, top)], words=1, contains=contains)
                    for j, s in enumerate(children, 1)]
            sections.append(Section(id=make_id(top, f"s{i}"), title=top, brief=briefs[(top, None)],
                                    words=1, contains=[] if kids else contains, children=kids))
        weights = [part.share for part, _, _ in skeleton] if skeleton else [1] * len(sections)
        for node, share in zip(sections, distribute(words, weights)):
            node.words = share
        return sections


def _from_template(req: PlanRequest, template: Template | None) -> tuple[str, str]:
    """Audience and style: the user's when given, else the template's, else the defaults."""
    audience = req.audience if req.audience != defaults.AUDIENCE or not template else template.audience or req.audience
    style = req.style if req.style != defaults.STYLE or not template else template.style or req.style
    return audience, style


def _skeleton(template: Template, req: PlanRequest) -> list[tuple[TemplateSection, int, int]]:
    """(template section, its words, subsections to plan for it): a section the template lets
    the planner subdivide gets one subsection per ~230 words of its budget, when that is 2 or
    more (the same density as a plan without a template)."""
    budgets = distribute(req.words, [part.share for part in template.sections])
    return [(part, words, round(words / 230) if part.subdivide and words >= 2 * MIN_SUBSECTION_WORDS else 0)
            for part, words in zip(template.sections, budgets)]


def _contents(contains: list[str]) -> list[str]:
    """What a section holds besides prose: nothing to note when it is prose only."""
    return [] if set(contains) <= {"prose"} else list(contains)
