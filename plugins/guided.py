"""A guided proposal: token-level contrastive decoding away from the latest failure model.

Each token is drawn from log_softmax(log p_theta + beta * (log p_theta - log p_phi)) given the
prefix: a tractable, token-by-token stand-in for p_theta (p_theta / p_phi)^beta, so that the
proposal itself leaves known failure modes and the rejection regions (still applied as filters)
reject less. Its log-likelihood is exact (the per-token normalisers are computed), so it can be
the ratio test's reference and can be scored at any temperature.
"""

from __future__ import annotations

from pathlib import Path

import torch

from banel_framework.interfaces import FitResult, Generator
from banel_framework.samples import Samples
from banel_framework.seeding import torch_generator


class Guided(Generator):
    """base's tokens pushed away from phi's by beta, step by step (transformer generators)."""

    wrapper = True

    def __init__(self, base: Generator, phi: Generator, beta: float):
        if not hasattr(getattr(base, "module", None), "guided_token_log_probs"):
            raise TypeError(f"{type(base).__name__} cannot be guided (needs a transformer)")
        self.base, self.phi, self.beta = base, phi, beta
        self.device = base.device

    def _guides(self) -> list[tuple[torch.nn.Module, float]]:
        """(1 + beta) log p - beta log p_phi: the base's own term is weighted, not recomputed."""
        base, phi = self.base._ready(), self.phi._ready()
        return [(phi.to(base.device), -self.beta)]

    @torch.no_grad()
    def sample(self, n: int, *, seed: int, temperature: float = 1.0) -> Samples:
        module = self.base._ready()
        tokens, lengths, lp = module.decode(n, torch_generator(seed, self.device), temperature,
                                            guides=self._guides(), self_weight=1 + self.beta)
        return Samples(tokens.cpu(), lengths.cpu(), lp.float().cpu())

    def log_prob(self, samples: Samples) -> torch.Tensor:
        return self.log_prob_at(samples, 1.0)

    @torch.no_grad()
    def log_prob_at(self, samples: Samples, temperature: float) -> torch.Tensor:
        module, guides = self.base._ready(), self._guides()
        out = torch.zeros(len(samples))
        step = getattr(self.base, "score_batch_size", 2048)
        for i in range(0, len(samples), step):
            part = samples.select(list(range(i, min(i + step, len(samples)))))
            lp = module.guided_token_log_probs(part.tokens.to(self.device),
                                               part.lengths.to(self.device), guides, temperature,
                                               1 + self.beta)
            out[i:i + len(part)] = lp.sum(1).float().cpu()
        return out

    def fit(self, samples, settings, *, seed, weights=None) -> FitResult:
        raise NotImplementedError("a guided proposal is not trained; fit its base instead")

    def clone(self) -> Guided:
        return Guided(self.base.clone(), self.phi, self.beta)

    def fresh(self) -> Generator:
        return self.base.fresh()

    def save(self, path: Path) -> None:
        self.base.save(path)

    def load(self, path: Path) -> None:
        self.base.load(path)

    def describe(self) -> dict:
        return {"class": "Guided", "beta": self.beta, "base": self.base.describe()}
