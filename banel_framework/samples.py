"""Samples: batches of token sequences with their exact log-likelihoods."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch


@dataclass
class Samples:
    """A batch of token sequences, right-padded with 0, with lengths and optional log-probs."""

    tokens: torch.Tensor  # int64 [B, T]
    lengths: torch.Tensor  # int64 [B]
    log_prob: torch.Tensor | None = None  # float [B], under the model that drew them

    def __post_init__(self) -> None:
        if self.tokens.dim() != 2:
            raise ValueError(f"tokens must be [batch, time], got shape {tuple(self.tokens.shape)}")
        if self.lengths.shape != (self.tokens.shape[0],):
            raise ValueError("lengths must have one entry per sequence")

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def to(self, device: str | torch.device) -> Samples:
        """The same samples on another device."""
        lp = None if self.log_prob is None else self.log_prob.to(device)
        return Samples(self.tokens.to(device), self.lengths.to(device), lp)

    def sequences(self) -> list[list[int]]:
        """Each sample as a plain list of token ids (padding removed)."""
        toks = self.tokens.tolist()
        return [row[:n] for row, n in zip(toks, self.lengths.tolist())]

    def keys(self) -> list[str]:
        """Canonical keys: the token ids joined by commas; equal samples have equal keys."""
        return [sequence_key(seq) for seq in self.sequences()]

    def select(self, index: torch.Tensor | Sequence[int]) -> Samples:
        """The rows chosen by a boolean mask or an index list."""
        if not isinstance(index, torch.Tensor):
            index = torch.as_tensor(list(index), dtype=torch.long)
        index = index.to(self.tokens.device)
        lp = None if self.log_prob is None else self.log_prob[index]
        sub = Samples(self.tokens[index], self.lengths[index], lp)
        return sub.trim()

    def trim(self) -> Samples:
        """Drop padding columns that no sequence uses."""
        width = int(self.lengths.max().item()) if len(self) else 0
        if width < self.tokens.shape[1]:
            return Samples(self.tokens[:, :width], self.lengths, self.log_prob)
        return self

    @classmethod
    def from_sequences(cls, seqs: Iterable[Sequence[int]], device: str | torch.device = "cpu") -> Samples:
        """Build a padded batch from lists of token ids."""
        seqs = [list(s) for s in seqs]
        width = max((len(s) for s in seqs), default=0)
        tokens = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            if s:
                tokens[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        lengths = torch.as_tensor([len(s) for s in seqs], dtype=torch.long)
        return cls(tokens.to(device), lengths.to(device))

    @classmethod
    def from_keys(cls, keys: Iterable[str], device: str | torch.device = "cpu") -> Samples:
        """Rebuild samples from their canonical keys."""
        return cls.from_sequences((key_sequence(k) for k in keys), device)

    @classmethod
    def cat(cls, parts: Sequence[Samples]) -> Samples:
        """Concatenate batches, padding to the widest."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(torch.zeros((0, 0), dtype=torch.long), torch.zeros(0, dtype=torch.long))
        width = max(p.tokens.shape[1] for p in parts)
        device = parts[0].device
        toks = [torch.nn.functional.pad(p.tokens.to(device), (0, width - p.tokens.shape[1])) for p in parts]
        lps = [p.log_prob for p in parts]
        lp = torch.cat([x.to(device) for x in lps]) if all(x is not None for x in lps) else None
        return cls(torch.cat(toks), torch.cat([p.lengths.to(device) for p in parts]), lp)

    @classmethod
    def empty(cls) -> Samples:
        """A batch with no samples."""
        return cls.cat([])


def sequence_key(seq: Sequence[int]) -> str:
    """The canonical key of one token sequence."""
    return ",".join(map(str, seq))


def key_sequence(key: str) -> list[int]:
    """The token ids behind a canonical key."""
    return [int(t) for t in key.split(",")] if key else []
