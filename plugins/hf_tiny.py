"""A random-weight GPT-2 with a byte-level BPE tokenizer trained locally: no download, for tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from .hf_loading import require

TEXTS = [
    "Question: Tom has 3 apples and buys 5 more. How many apples does he have? Answer: 3 + 5 = 8",
    "#### 8", "The answer is 42.", "Let's think step by step.", "0 1 2 3 4 5 6 7 8 9 10 100 1000",
    "She pays $12 for 4 pens, so each pen costs 12 / 4 = 3 dollars. #### 3",
]
CHAT_TEMPLATE = ("{% for m in messages %}<|user|> {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def tiny_causal_lm(path: str | Path, *, texts: Iterable[str] | None = None, vocab_size: int = 400,
                   n_embd: int = 32, n_layer: int = 2, n_head: int = 2, n_positions: int = 512,
                   seed: int = 0, chat_template: bool = True) -> Path:
    """Write a tiny GPT-2 (random weights) and its tokenizer to `path`; returns the directory."""
    transformers = require("transformers", "tiny_causal_lm")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(list(texts or TEXTS), trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                                bos_token="<|endoftext|>")
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    eos = fast.convert_tokens_to_ids("<|endoftext|>")
    config = transformers.GPT2Config(
        vocab_size=len(fast), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
        n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=eos, eos_token_id=eos)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = transformers.GPT2LMHeadModel(config)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out
