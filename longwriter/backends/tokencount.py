"""Token counts for a model behind a server, without a round-trip per count.

The writer counts tokens in hot loops (trimming context sentence by sentence), so a count must
be local. In order of preference: the model's own tokenizer when it is on this machine (exact);
else an estimate calibrated once, at start-up, against the server's tokenize endpoint; else a
plain estimate (4 characters per token, one per CJK character)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]")
# Calibration text: ordinary prose in each script the writer produces.
_SAMPLES = {
    "latin": "The history of coffee begins in the highlands of Ethiopia, where travellers and traders "
             "carried the beans across the Red Sea. By the fifteenth century, coffee houses in Yemen and "
             "Cairo had become places to talk, read and argue about the news of the day.",
    "cjk": "咖啡的历史始于埃塞俄比亚高原，商人和旅行者把咖啡豆带过红海。到十五世纪，也门和开罗的咖啡馆已经成为人们谈话、读书和讨论时事的地方。",
}


class TokenCounter:
    """Counts tokens as ``latin_chars / chars_per_token + cjk_chars * tokens_per_cjk`` unless a
    local tokenizer is given. ``source`` says which (report.json shows it)."""

    def __init__(self, tokenizer=None, chars_per_token: float = 4.0, tokens_per_cjk: float = 1.0,
                 source: str = "estimate") -> None:
        self.tokenizer, self.source = tokenizer, source
        self.chars_per_token, self.tokens_per_cjk = chars_per_token, tokens_per_cjk

    @classmethod
    def calibrated(cls, tokenize: Callable[[str], int]) -> TokenCounter:
        """An estimate fitted to the server's own counts of the two samples (two requests)."""
        latin, cjk = (tokenize(_SAMPLES[k]) for k in ("latin", "cjk"))
        return cls(chars_per_token=len(_SAMPLES["latin"]) / max(1, latin),
                   tokens_per_cjk=cjk / len(_CJK.findall(_SAMPLES["cjk"])), source="calibrated on the server")

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False).input_ids)
        cjk = len(_CJK.findall(text))
        return max(1, math.ceil((len(text) - cjk) / self.chars_per_token + cjk * self.tokens_per_cjk))


def local_tokenizer(names: list[str]):
    """The first of ``names`` (a model id or directory) whose tokenizer is on this machine, or
    None. Never downloads."""
    from transformers import AutoTokenizer

    from .transformers_backend import quiet_transformers

    quiet_transformers()
    for name in names:
        try:
            return AutoTokenizer.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError, TypeError, KeyError):
            continue  # not cached here, or not a tokenizer transformers can read
    return None
