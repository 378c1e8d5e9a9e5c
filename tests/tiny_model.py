"""A tiny random-weight causal LM with a character-level tokenizer, built offline, so tests
can run the real TransformersBackend code path (loading, batching, per-row limits, stop
strings, cancel) in seconds. Its text is gibberish; only its mechanics matter."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

EOS, PAD, UNK = "<eos>", "<pad>", "<unk>"
CHAT_TEMPLATE = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}[assistant] {% endif %}")


def build_tiny_model(path: Path, *, distinct_pad: bool = False) -> Path:
    """Save a tokenizer (one token per character) and a 2-layer Llama with random weights
    into ``path``. The pad token is the EOS token (as in SmolLM2) unless ``distinct_pad``."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = [EOS, UNK] + ([PAD] if distinct_pad else [])
    chars = sorted(set(string.printable) - set("\t\r\x0b\x0c"))  # letters, digits, punctuation, space, \n
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
    core.decoder = decoders.Fuse()  # decode by concatenating, no spaces between tokens
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, unk_token=UNK,
                                  pad_token=PAD if distinct_pad else EOS)
    tok.chat_template = CHAT_TEMPLATE

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=64, max_position_embeddings=512,
                         initializer_range=0.5,  # peaky logits: varied greedy text, not one repeated character
                         eos_token_id=vocab[EOS], pad_token_id=tok.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_model_dir_distinct_pad(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model-pad"), distinct_pad=True)
