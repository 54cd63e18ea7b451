"""The digits prior: a generator trained on one mixture of digits, cached under a content hash."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from banel_framework.config import FitSettings
from banel_framework.interfaces import Generator, TaskContext
from banel_framework.samples import Samples

from . import digits_data

#: Bump when the training data or procedure changes, so old checkpoints are not reused.
VERSION = 1


def training_rows(levels: int, digits: list[int], mix_digits: list[int], mix_share: float,
                  seed: int) -> np.ndarray:
    """The prior's training images: all of `digits`, plus a `mix_share` from `mix_digits`."""
    x, y = digits_data.load(levels)
    base = x[np.isin(y, digits)]
    if not mix_digits or mix_share <= 0:
        return base
    pool = x[np.isin(y, mix_digits)]
    k = min(len(pool), round(mix_share / (1 - mix_share) * len(base)))
    pick = np.random.default_rng(seed).choice(len(pool), size=k, replace=False)
    return np.concatenate([base, pool[np.sort(pick)]])


def as_samples(rows: np.ndarray, levels: int) -> Samples:
    """Pixel rows [N, 64] as sequences: 64 pixel tokens then EOS (= levels)."""
    eos = np.full((len(rows), 1), levels, dtype=np.int64)
    tokens = torch.from_numpy(np.concatenate([rows, eos], 1))
    return Samples(tokens, torch.full((len(rows),), digits_data.PIXELS + 1, dtype=torch.long))


def checkpoint_path(ctx: TaskContext, gen: Generator, recipe: dict[str, Any]) -> Path:
    """Where a prior of this architecture and training recipe is cached."""
    desc = gen.describe()
    key = {"version": VERSION, "generator": ctx.generator_name, "class": desc.get("class"),
           "architecture": desc.get("architecture", ctx.generator_options), **recipe}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return ctx.cache_dir / f"prior-{digest[:16]}.pt"


def trained_prior(ctx: TaskContext, gen: Generator, rows: np.ndarray, levels: int,
                  fit: FitSettings, seed: int, recipe: dict[str, Any]) -> tuple[Generator, dict]:
    """Load the cached prior, or fit `gen` on `rows` (seeded, one thread) and cache its weights."""
    path = checkpoint_path(ctx, gen, recipe)
    meta_path = path.with_suffix(".json")
    if path.is_file():
        gen.load(path)
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return gen, {**meta, "checkpoint": str(path), "cached": True}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float sums, hence the weights, depend on the thread count
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            gen = gen.fresh()  # initial weights depend on the seed only
        result = gen.fit(as_samples(rows, levels), fit, seed=seed)
    finally:
        torch.set_num_threads(threads)
    meta = {"train_rows": len(rows), "train_seconds": result.seconds, "steps": result.steps,
            "final_loss": result.final_loss, "recipe": recipe, "created_at": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    gen.save(tmp)
    os.replace(tmp, path)
    meta_path.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return gen, {**meta, "checkpoint": str(path), "cached": False}
