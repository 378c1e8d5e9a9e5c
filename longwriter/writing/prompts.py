"""Every text a section's requests show the model, rendered from the templates: the system
turn, the section prompt (with a rejected draft's feedback), the judge's question and the
summary request. No prompt text lives in Python."""

from __future__ import annotations

from collections.abc import Callable

from ..backends.base import Message
from ..checker import Scores
from ..context import SectionContext, head_tokens
from ..outline import Outline
from ..prompts import Prompts

JUDGE_TOKENS = 600  # the judge reads the head of a draft: enough to tell topic and repetition
SUMMARY_INPUT_TOKENS = 500  # the part of a section its summary is made from
PREVIOUS_SUMMARY_TOKENS = 160  # the chain's summary so far, carried into the next one


class SectionPrompts:
    """Renders one outline's section requests."""

    def __init__(self, outline: Outline, prompts: Prompts, count_tokens: Callable[[str], int]) -> None:
        self.outline, self.prompts, self.count_tokens = outline, prompts, count_tokens
        self.system = self.render("system", **outline.model_dump(exclude={"sections"}))

    def render(self, name: str, **values) -> str:
        """The template in the document's language where one exists (``section.zh``)."""
        return self.prompts.render(self.prompts.localized(name, self.outline.language), **values)

    def messages(self, user: str) -> list[Message]:
        return [Message(role="system", content=self.system), Message(role="user", content=user)]

    def section(self, ctx: SectionContext, feedback: list[str]) -> str:
        return self.render("section", **self.outline.model_dump(exclude={"sections", "words"}),
                                   **ctx.model_dump(exclude={"id"}), feedback=feedback)

    def feedback(self, scores: Scores, ctx: SectionContext) -> list[str]:
        """The checker's problem codes as sentences for the rewrite, one per problem."""
        text = self.render("feedback", problems=scores.problems, topic=self.outline.topic,
                           language=self.outline.language, section_title=ctx.section_title, brief=ctx.brief,
                           closest=scores.closest)
        return [line.strip() for line in text.splitlines() if line.strip()]

    def judge(self, ctx: SectionContext, text: str) -> str:
        return self.render("judge", topic=self.outline.topic, section_title=ctx.section_title,
                                   brief=ctx.brief, text=head_tokens(text, JUDGE_TOKENS, self.count_tokens))

    def summary(self, previous: str, ctx: SectionContext, text: str, words: int) -> str:
        return self.render(
            "summary", previous=head_tokens(previous, PREVIOUS_SUMMARY_TOKENS, self.count_tokens) if previous else "",
            section_title=ctx.section_title, text=head_tokens(text, SUMMARY_INPUT_TOKENS, self.count_tokens),
            words=words)
