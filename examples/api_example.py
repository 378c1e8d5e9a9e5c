"""The Python API end to end: plan an outline, adjust it in code, write the document.

    python examples/api_example.py [OUT_DIR]

Runs on the embedded SmolLM2-135M-Instruct unless you pass model="..." (any Hugging Face id
or local directory) to plan() and expand()."""

import sys

from longwriter import WriterSettings, dump_outline, expand, plan
from longwriter.outline import rebalance


def main(out: str) -> None:
    outline = plan("Why bees matter to farming", words=600, audience="farmers", seed=1)
    print(dump_outline(outline))

    # Edit like a content team would: sharpen a brief and give the first section more room.
    outline.sections[0].brief = "How bees carry pollen between the flowers of food crops."
    outline.sections[0].words *= 2
    outline = rebalance(outline)  # budgets flow top-down again, summing to outline.words

    result = expand(outline, out, settings=WriterSettings(max_attempts=2), policy="chapter")
    report = result.report
    print(result.document)
    print(f"{report.produced_words} words (asked {report.required_words}), length score {report.length_score}")
    for section in report.sections:
        print(f"  {section.id}: {section.words} words, {section.attempts} draft(s), "
              f"topic relevance {section.scores.topic_relevance:.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bees")
