"""The Python API: `run(...)` a method on a task, `open_run(path)` to read a run directory."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import run as _run
from .config import set_path
from .ledger import Evaluation, Ledger
from .posterior import Posterior


@dataclass
class Result:
    """A run directory: its summary, its ledger, and the final distribution to sample from."""

    run: _run.Run

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json (rebuilt from the ledger when missing)."""
        import json

        path = self.run_dir / "summary.json"
        if not path.exists():
            from .runner import write_outputs

            return write_outputs(self.run)
        return json.loads(path.read_text())

    @property
    def ledger(self) -> Ledger:
        """The NRE ledger (read it; only a running method writes it)."""
        return self.run.ledger

    def evaluations(self) -> list[Evaluation]:
        """Every oracle call, in the order it was paid for."""
        return self.ledger.evaluations()

    def successes(self) -> list[str]:
        """Readable forms of the successes found within the budget."""
        return [e.text for e in self.ledger.solutions()]

    def metrics(self) -> list[dict[str, str]]:
        """metrics.csv, one dict a round."""
        with open(self.run_dir / "metrics.csv") as fh:
            return list(csv.DictReader(fh))

    def distribution(self) -> Posterior:
        """The final distribution (the method's chosen round) to sample from."""
        return self.run.method.final_distribution(self.run)[1]

    def sample(self, n: int, *, seed: int = 0) -> list[str]:
        """`n` samples of the final distribution, as text (no NREs are spent)."""
        rc = self.run.config.rounds
        res = self.distribution().draw(n, seed=seed, batch_size=rc.draw_batch_size,
                                       max_draws=max(rc.max_draws_per_round, n))
        return self.run.codec.decode_batch(res.samples)


def _layers(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Overrides as a nested dict; keys may be dotted ('rounds.samples_per_round')."""
    out: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        set_path(out, key.split("."), value)
    return out


def run(task: str | None = None, *, method: str | None = None, budget: int | None = None,
        seed: int | None = None, overrides: dict[str, Any] | None = None,
        config_file: str | None = None, out: str | Path | None = None,
        progress: bool = False) -> Result:
    """Run a method on a task to the end of its budget, like `banel run`; returns its result."""
    from .runner import execute

    layers = _run.user_layers(config_file, [], task=task, method=method, budget=budget, seed=seed,
                              progress=progress)
    layers.insert(len(layers) - 1, _layers(overrides))
    r = _run.create_run(_run.plan(layers), out)
    execute(r)
    return Result(r)


def open_run(path: str | Path) -> Result:
    """An existing run directory, for reading (`banel resume` continues it)."""
    r = _run.open_run(path)
    r.config.progress = False
    return Result(r)
