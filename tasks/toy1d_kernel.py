"""ordinal-kernel: a failure model that knows toy-1d's bins are ordered (neighbours fail alike).

p_phi = (1 - prior_share) * KDE + prior_share * p_parent, where the KDE puts a Gaussian kernel
of `bandwidth` bins on each negative. Fitted in closed form (no gradient steps): phi is the
parent categorical with these log-probabilities as its logits, so it saves, loads and scores
like any categorical. The finetune failure model moves mass only onto the bins it saw, so its
regions exclude evaluated bins and nothing else; this one also rejects their neighbours.
"""

from __future__ import annotations

import time

import torch
from pydantic import Field

from banel_framework.config import FailureModelConfig, FitSettings
from banel_framework.errors import ConfigError
from banel_framework.interfaces import FailureModelBuilder, FitResult, Generator, Options
from banel_framework.samples import Samples


class OrdinalKernelOptions(Options):
    """Options of the ordinal-kernel failure model."""

    bandwidth: float = Field(2.0, gt=0, description="Standard deviation of the kernel, in bins "
                             "(2 and reach 3: chosen on the sparse suite's toy tail).")
    reach: float | None = Field(
        3.0, gt=0, description="Cut the kernel off beyond this many bandwidths (None: the full "
        "Gaussian; its tails reject far bins where the prior is tiny).")
    prior_share: float = Field(
        0.1, ge=0, lt=1, description="Share of p_phi kept from the parent (the prior): "
        "keeps log p_phi finite everywhere.")


class OrdinalKernelFailureModel(FailureModelBuilder):
    """p_phi = a Gaussian kernel density over the negatives' bin indices, mixed with the parent."""

    Options = OrdinalKernelOptions

    def check(self, config: FailureModelConfig) -> None:
        if config.init == "proposal":
            raise ConfigError("invalid configuration: the ordinal-kernel failure model mixes "
                              "with the prior; set banel.failure_model.init to prior or scratch")

    def fit(self, parent: Generator, negatives: Samples, settings: FitSettings, *,
            from_scratch: bool, seed: int, counter_examples: Samples | None = None,
            counter_weight: float = 0.0) -> tuple[Generator, FitResult]:
        start = time.perf_counter()
        logits = getattr(getattr(parent, "module", None), "logits", None)
        if logits is None or logits.dim() != 1:
            raise ConfigError("the ordinal-kernel failure model needs a single-token "
                              "categorical generator (toy-1d's prior)")
        phi = parent.clone()
        bins = logits.numel()
        base = (torch.full((bins,), 1.0 / bins) if from_scratch
                else torch.softmax(logits.detach().float().cpu(), 0))
        idx = torch.arange(bins, dtype=torch.float32)
        centres = negatives.tokens[:, 0].float().cpu()
        z = (idx[:, None] - centres[None, :]) / self.options.bandwidth
        kernel = torch.exp(-0.5 * z ** 2)
        if self.options.reach is not None:
            kernel = kernel * (z.abs() <= self.options.reach)
        kde = (kernel / kernel.sum(0, keepdim=True)).mean(1)
        share = self.options.prior_share
        mass = (1 - share) * kde + share * base
        with torch.no_grad():
            phi.module.logits.copy_(torch.log(mass.clamp_min(1e-300)).to(phi.module.logits))
        return phi, FitResult(time.perf_counter() - start, 0, None,
                              {"bandwidth": self.options.bandwidth, "negatives": len(negatives)})
