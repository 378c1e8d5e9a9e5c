"""The rolling summary a section leaves for the sections that depend on it."""

from __future__ import annotations

import networkx as nx

from ..backends.base import ChatRequest
from ..context import SectionContext
from ..graph import previous_in_chain
from ..length import drop_unfinished_tail
from ..wrappers import MetaTalk
from .prompts import SectionPrompts
from .sampling import SamplingPolicy
from .settings import WriterSettings


class Summarizer:
    """Summarises a finished section together with its chain's summary so far."""

    def __init__(self, graph: nx.DiGraph, prompts: SectionPrompts, sampling: SamplingPolicy,
                 settings: WriterSettings, tokens_per_word: float, wrappers: MetaTalk) -> None:
        self.graph, self.prompts, self.sampling = graph, prompts, sampling
        self.settings, self.tokens_per_word, self.wrappers = settings, tokens_per_word, wrappers

    def needed(self, section_id: str) -> bool:
        """Only a section some later section reads needs a summary (unless all are asked for)."""
        return self.settings.summarize == "all" or any(True for _ in self.graph.successors(section_id))

    def summary(self, section_id: str, text: str, ctx: SectionContext, summaries: dict[str, str]):
        """The summary (a generator of one request), or "" when no later section reads it."""
        if not self.needed(section_id):
            return ""
        prev = previous_in_chain(self.graph, section_id)
        user = self.prompts.summary(summaries.get(prev, "") if prev else "", ctx, text, self.settings.summary_words)
        done = yield ChatRequest(messages=self.prompts.messages(user),
                                 sampling=self.sampling.summary(section_id, self.tokens_per_word))
        return drop_unfinished_tail(self.wrappers.strip(done.text))  # later prompts read it: no "Here is"
