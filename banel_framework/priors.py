"""Training a prior on a task's own data, cached by what its weights depend on (never the run seed)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import FitSettings
from .samples import Samples

if TYPE_CHECKING:
    from .interfaces import Generator, TaskContext

log = logging.getLogger(__name__)

#: Bump when the way a prior is fitted changes, so that older checkpoints are not reused.
VERSION = 1


def data_digest(data: Samples) -> str:
    """A content hash of the sequences: their tokens up to each length, in order."""
    h = hashlib.sha256()
    h.update(data.lengths.cpu().numpy().tobytes())
    width = int(data.lengths.max()) if len(data) else 0
    h.update(data.tokens[:, :width].contiguous().cpu().numpy().astype("int64").tobytes())
    return h.hexdigest()


def prior_key(ctx: TaskContext, gen: Generator, data: Samples, settings: FitSettings,
              seed: int) -> dict[str, Any]:
    """Everything the fitted weights depend on: family, architecture, data, schedule, seed."""
    desc = gen.describe()
    return {"version": VERSION, "generator": ctx.generator_name, "class": desc.get("class"),
            "architecture": desc.get("architecture", ctx.generator_options),
            "data": data_digest(data), "sequences": len(data),
            "fit": settings.model_dump(), "seed": seed}


def fit_prior(ctx: TaskContext, data: Samples, settings: FitSettings, *, seed: int = 0,
              name: str = "prior", **architecture: Any) -> Generator:
    """A generator of the run's family fitted on `data`, loaded from ctx.cache_dir when cached."""
    if len(data) == 0:
        raise ValueError("fit_prior needs at least one training sequence")
    gen = ctx.build_generator(**architecture)
    key = prior_key(ctx, gen, data, settings, seed)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    path = ctx.cache_dir / f"{name}-{digest[:16]}.pt"
    if path.is_file():
        gen.load(path)
        return gen
    path.parent.mkdir(parents=True, exist_ok=True)
    if ctx.progress:
        log.info("training %s on %d sequences (%d epochs); cached at %s",
                 name, len(data), settings.epochs, path)
    if hasattr(gen, "show_progress"):  # Lightning generators draw Lightning's own bar
        gen.show_progress = ctx.progress
    start = time.perf_counter()
    try:
        result = gen.fit(data, settings, seed=seed)
    finally:
        if hasattr(gen, "show_progress"):
            gen.show_progress = False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    gen.save(tmp)
    os.replace(tmp, path)  # atomic: a killed fit never leaves a half-written checkpoint
    record = {**key, "seconds": time.perf_counter() - start, "steps": result.steps,
              "loss": result.final_loss}
    path.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return gen


def cached_priors(cache_dir: Path, name: str = "prior") -> list[dict[str, Any]]:
    """The records of the priors fit_prior cached in a task's cache directory."""
    return [json.loads(p.read_text()) for p in sorted(cache_dir.glob(f"{name}-*.json"))]
