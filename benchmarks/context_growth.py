"""Context growth: mean prompt tokens per section for a 4-section and a 40-section document,
counted with the embedded model's own tokenizer on the exact prompts longwriter sends. The
section bodies come from a scripted source of the budgeted length (prompt size depends on the
context policy, not on what the text says), so this runs in seconds. For comparison it also
prints AgentWrite's prompt size (the same instruction plus the whole text so far).

    python -m benchmarks.context_growth
"""

from __future__ import annotations

import random
import re
import tempfile

from longwriter.backends.embedded import embedded_model_dir
from longwriter.backends.fake import ScriptedBackend
from longwriter.pipeline import expand
from longwriter.writer import WriterSettings

from .common import coffee_outline

WORDS = "coffee beans merchants ports trade roasted Ethiopia Yemen Venice London cafes drink farmers".split()


def body(words: int, rng: random.Random) -> str:
    sentences = []
    while sum(len(s.split()) for s in sentences) < words:
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(10)).capitalize() + ".")
    return " ".join(sentences)


class TokenizerCounted(ScriptedBackend):
    """Scripted text, real token counts (prompt = system + user message, as the model sees them)."""

    def __init__(self) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
        rng = random.Random(0)

        def respond(request):
            m = re.search(r"Write about (\d+) words", request.messages[-1].content)
            return body(int(m.group(1)) if m else 60, rng)

        super().__init__(respond, batch_size=16)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids) if text else 0


def measure(chapters: int, per: int, policy: str) -> tuple[float, float, float, int]:
    """(mean prompt tokens, mean over sections that follow another, AgentWrite-style mean, sections)."""
    backend = TokenizerCounted()
    outline = coffee_outline(chapters, per, 300)
    with tempfile.TemporaryDirectory() as out:
        result = expand(outline, out, backend=backend, settings=WriterSettings(check=False), policy=policy)
    drafts = [r for r in backend.requests if "Write about" in r.messages[-1].content and not r.prefill]
    ours = [sum(backend.count_tokens(m.content) for m in r.messages) for r in drafts]
    texts = [s.text for s in result.report.sections]
    # AgentWrite: the same instruction (our smallest prompt) plus every section written so far
    agentwrite = [min(ours) + backend.count_tokens("\n\n".join(texts[:i])) for i in range(len(texts))]
    steady = [n for r, n in zip(drafts, ours) if "The previous section ends" in r.messages[-1].content] or ours
    return sum(ours) / len(ours), sum(steady) / len(steady), sum(agentwrite) / len(agentwrite), len(texts)


def main() -> None:
    print("mean prompt tokens per section (embedded model's tokenizer, 300-word sections, 2 sections per chapter)")
    print("'following' = sections that continue a previous one (the first of a chain has no prior text)")
    print(f"{'policy':<12}{'4 sections':>11}{'40 sections':>12}{'change':>8}{'following 4':>13}{'following 40':>13}"
          f"{'change':>8}{'AgentWrite 4':>14}{'AgentWrite 40':>14}")
    for policy in ("serial", "chapter", "independent"):
        small, steady_small, aw_small, n1 = measure(2, 2, policy)
        large, steady_large, aw_large, n2 = measure(20, 2, policy)
        assert (n1, n2) == (4, 40)
        print(f"{policy:<12}{small:>11.0f}{large:>12.0f}{large / small - 1:>+8.1%}{steady_small:>13.0f}"
              f"{steady_large:>13.0f}{steady_large / steady_small - 1:>+8.1%}{aw_small:>14.0f}{aw_large:>14.0f}")
    print("target: longwriter's mean flat (within 10%) from 4 to 40 sections; AgentWrite's grows linearly")


if __name__ == "__main__":
    main()
