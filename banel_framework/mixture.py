"""A proposal that mixes a distilled generator with the prior, to keep the prior's diversity."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .interfaces import FitResult, Generator, LogProbModel
from .samples import Samples
from .seeding import derive_seed, torch_generator


class Mixture(Generator):
    """(1 - alpha) * base + alpha * other; samples and scores exactly, does not train."""

    #: A proposal built around `base`: copies and fits go to the base (see `trainable`).
    wrapper = True

    def __init__(self, base: Generator, other: Generator, alpha: float):
        if not 0 < alpha < 1:
            raise ValueError("alpha must lie strictly between 0 and 1")
        self.base, self.other, self.alpha = base, other, alpha

    def sample(self, n: int, *, seed: int, temperature: float = 1.0) -> Samples:
        pick = torch.rand(n, generator=torch_generator(derive_seed(seed, "mix"))) < self.alpha
        k = int(pick.sum())
        parts = []
        if n - k:
            parts.append(self.base.sample(n - k, seed=derive_seed(seed, "base"),
                                          temperature=temperature))
        if k:
            parts.append(self.other.sample(k, seed=derive_seed(seed, "other"),
                                           temperature=temperature))
        out = Samples.cat(parts)
        out.log_prob = self.log_prob(out)
        return out

    def log_prob(self, samples: Samples) -> torch.Tensor:
        a = self.base.log_prob(samples) + math.log(1 - self.alpha)
        b = self.other.log_prob(samples) + math.log(self.alpha)
        return torch.logaddexp(a, b)

    def log_prob_at(self, samples: Samples, temperature: float) -> torch.Tensor:
        a = self.base.log_prob_at(samples, temperature) + math.log(1 - self.alpha)
        b = self.other.log_prob_at(samples, temperature) + math.log(self.alpha)
        return torch.logaddexp(a, b)

    def fit(self, samples: Samples, settings, *, seed: int, weights=None) -> FitResult:
        raise NotImplementedError("a mixture proposal is not trained; fit its base instead")

    def clone(self) -> Generator:
        return Mixture(self.base.clone(), self.other, self.alpha)

    def fresh(self) -> Generator:
        return self.base.fresh()

    def save(self, path: Path) -> None:
        self.base.save(path)

    def load(self, path: Path) -> None:
        self.base.load(path)


def trainable(gen: Generator) -> Generator:
    """The generator to copy or fine-tune: a wrapper's base (a mixture's distilled component,
    a guided proposal's generator), else itself."""
    while getattr(gen, "wrapper", False):
        gen = gen.base
    return gen


class WeightedMixture(LogProbModel):
    """log sum_i w_i p_i(x): the distribution a set of models drew some data from, in shares."""

    def __init__(self, components: list[tuple[LogProbModel, float]]):
        total = sum(w for _, w in components)
        if not components or total <= 0 or any(w < 0 for _, w in components):
            raise ValueError("a weighted mixture needs non-negative weights with a positive sum")
        self.components = [(m, w / total) for m, w in components if w > 0]

    def log_prob(self, samples: Samples) -> torch.Tensor:
        return self.combine([m.log_prob(samples).detach().cpu().float()
                             for m, _ in self.components])

    def combine(self, log_probs: list[torch.Tensor]) -> torch.Tensor:
        """The mixture's log-likelihood from its components' (in the components' order)."""
        return torch.logsumexp(torch.stack([lp + math.log(w) for lp, (_, w)
                                            in zip(log_probs, self.components)]), 0)
