"""A categorical generator over single tokens (the toy's prior and failure models)."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Options

from .lightning_generator import LightningGenerator, SequenceModule


class CategoricalModule(SequenceModule):
    """p(x) = softmax(logits)[x] over a vocabulary; samples are one-token sequences."""

    def __init__(self, vocab_size: int, init_log_probs: list[float] | None = None):
        super().__init__()
        self.save_hyperparameters()
        init = (torch.tensor(init_log_probs, dtype=torch.float32) if init_log_probs is not None
                else torch.zeros(vocab_size))
        if init.shape != (vocab_size,):
            raise ValueError(f"init_log_probs needs {vocab_size} values, got {tuple(init.shape)}")
        self.logits = torch.nn.Parameter(init.clone())

    def architecture(self) -> dict[str, Any]:
        return {"vocab_size": self.hparams.vocab_size}

    def sequence_log_prob(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.logits, 0)[tokens[:, 0]]

    def tempered_log_prob(self, tokens: torch.Tensor, lengths: torch.Tensor,
                          temperature: float) -> torch.Tensor:
        return torch.log_softmax(self.logits / temperature, 0)[tokens[:, 0]]

    def sample_sequences(self, n: int, generator: torch.Generator, temperature: float):
        probs = torch.softmax(self.logits / temperature, 0)
        idx = torch.multinomial(probs, n, replacement=True, generator=generator)
        lp = torch.log_softmax(self.logits, 0)[idx]
        return idx[:, None], torch.ones(n, dtype=torch.long, device=idx.device), lp


class CategoricalOptions(Options):
    """Options of the categorical generator."""

    vocab_size: int = Field(..., ge=2, description="Number of categories (tokens).")
    init_log_probs: list[float] | None = Field(None, description="Initial log-probabilities.")


class CategoricalGenerator(LightningGenerator):
    """A single-token categorical distribution, fitted with Lightning."""

    module_cls = CategoricalModule
    Options = CategoricalOptions


@hookimpl
def register_generators(register):
    register("categorical", CategoricalGenerator)
