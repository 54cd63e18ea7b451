"""count: pseudo-count novelty bonus from an online n-gram density model, driving the policy update.

The density model rho(x) = prod_t (n(t, x_{t-1}, x_t) + alpha) / (n(t, x_{t-1}) + alpha * V) counts
each token in its context (its position and the previous token). Adding x once gives the
recoding probability rho'(x); the pseudo-count (Bellemare et al., 2016) is
N(x) = rho(x) (1 - rho'(x)) / (rho'(x) - rho(x)), and the bonus is 1 / sqrt(N(x) + 0.01).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch
from pydantic import Field

from banel_framework.hookspecs import hookimpl
from banel_framework.run import Run
from banel_framework.samples import Samples

from .policy_gradient import NoveltyBonus, PolicyGradientMethod, PolicyGradientOptions

BOS = -1


class CountOptions(PolicyGradientOptions):
    """The policy update plus the pseudo-count bonus."""

    beta: float = Field(1.0, ge=0, description="Weight of the normalised pseudo-count bonus.")
    alpha: float = Field(0.1, gt=0, description="Additive smoothing of the n-gram density model.")
    vocab_size: int | None = Field(
        None, ge=1, description="Tokens V in the smoothing (None: the prior's, else ids seen).")


class NgramDensity:
    """Counts of (position, previous token, token): an online, exactly updatable density model."""

    def __init__(self, alpha: float, vocab: int):
        self.alpha, self.vocab = alpha, vocab
        self.counts: dict[tuple[int, int, int], int] = defaultdict(int)
        self.context: dict[tuple[int, int], int] = defaultdict(int)

    @staticmethod
    def _steps(seq: list[int]) -> list[tuple[int, int, int]]:
        return [(t, seq[t - 1] if t else BOS, tok) for t, tok in enumerate(seq)]

    def log_probs(self, seq: list[int]) -> tuple[float, float]:
        """(log rho(x), log rho'(x)): before and after counting x once more."""
        a, av = self.alpha, self.alpha * max(self.vocab, 1 + max(seq, default=0))
        before = after = 0.0
        for t, prev, tok in self._steps(seq):
            n, c = self.counts.get((t, prev, tok), 0), self.context.get((t, prev), 0)
            before += math.log((n + a) / (c + av))
            after += math.log((n + 1 + a) / (c + 1 + av))
        return before, after

    def pseudo_count(self, seq: list[int]) -> float:
        """N(x) = rho (1 - rho') / (rho' - rho), computed from the log-probabilities."""
        before, after = self.log_probs(seq)
        gain = after - before
        if gain <= 0:
            return math.inf
        return -math.expm1(after) / math.expm1(gain)

    def add(self, seq: list[int]) -> None:
        """Count x once."""
        self.vocab = max(self.vocab, 1 + max(seq, default=0))
        for t, prev, tok in self._steps(seq):
            self.counts[(t, prev, tok)] += 1
            self.context[(t, prev)] += 1

    def state(self) -> dict[str, Any]:
        rows = [[t, p, k, n] for (t, p, k), n in self.counts.items()]
        return {"counts": torch.tensor(rows, dtype=torch.long).reshape(-1, 4),
                "vocab": torch.tensor(self.vocab)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.counts.clear()
        self.context.clear()
        self.vocab = int(state["vocab"])
        for t, p, k, n in state["counts"].tolist():
            self.counts[(t, p, k)] = n
            self.context[(t, p)] += n


class CountBonus(NoveltyBonus):
    """Novelty = 1 / sqrt(pseudo-count + 0.01) under the online n-gram density model."""

    def __init__(self, opts: CountOptions, vocab: int):
        super().__init__()
        self.density = NgramDensity(opts.alpha, vocab)

    def raw(self, samples: Samples) -> torch.Tensor:
        counts = [self.density.pseudo_count(s) for s in samples.sequences()]
        return torch.tensor([1 / math.sqrt(n + 0.01) for n in counts], dtype=torch.float64)

    def learn(self, samples: Samples, seed: int) -> dict[str, Any]:
        for s in samples.sequences():
            self.density.add(s)
        return {"density_contexts": len(self.density.context)}

    def state(self) -> dict[str, Any]:
        return self.density.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self.density.load_state(state)


def prior_vocab(run: Run) -> int:
    """The prior's vocabulary size when its description names one, else 1."""
    arch = run.prior.describe().get("architecture") or {}
    return int(arch.get("vocab_size") or 1)


class CountMethod(PolicyGradientMethod):
    """REINFORCE on extrinsic reward plus beta times the normalised pseudo-count bonus."""

    name = "count"
    description = "Pseudo-count novelty bonus (online n-gram density model) driving a policy update."
    Options = CountOptions

    def make_bonus(self, run: Run) -> NoveltyBonus:
        opts = self.options
        return CountBonus(opts, opts.vocab_size or prior_vocab(run))


@hookimpl
def register_methods(register):
    register(CountMethod.name, CountMethod)
