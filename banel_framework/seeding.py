"""Seeds derived from (run seed, round, purpose), so every step is reproducible on its own."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed that depends only on the run seed and the given parts."""
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch RNG on `device`, apart from the global one used by training."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
