"""The default posterior scorer: the likelihood ratio test of the paper."""

from __future__ import annotations

import math

import torch

from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import PosteriorScorer


class RatioScorer(PosteriorScorer):
    """Reject x when p_ref(x) / p_phi(x)^kappa < 1/f, i.e. kappa*log p_phi - log p_ref > log f."""

    def reject(self, log_ref: torch.Tensor, log_phi: torch.Tensor) -> torch.Tensor:
        c = self.config
        return c.kappa * log_phi - log_ref > math.log(c.filter_factor)


@hookimpl
def register_posterior_scorers(register):
    register("ratio", RatioScorer)
