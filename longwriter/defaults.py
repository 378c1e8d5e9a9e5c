"""Defaults and bounds shared by the API models and the CLI, each defined once. Imports nothing
beyond the standard library, so ``longwriter --help`` stays instant."""

import re

AUDIENCE = "general readers"
STYLE = "clear, informative prose"
TEMPERATURE = 0.7  # section sampling when the model recommends none; the planner uses the same
TOP_P = 0.9
REPETITION_PENALTY = 1.15
MAX_ATTEMPTS = 2  # drafts per section when the checker rejects one
MAX_WORDS = 200_000  # a document's target, in the CLI and in an outline file alike
MAX_SECTIONS = 200  # top-level sections a plan may ask for
MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed accepts
DEVICE = re.compile(r"(auto|cpu|mps|cuda(:[0-9]{1,3})?)\Z")  # \Z: "cpu\n" is no device
DTYPES = ("auto", "float32", "bfloat16", "float16")  # what the in-process model's weights may load in
