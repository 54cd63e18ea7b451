"""digits-0to6's off-budget rates: the core's ratio estimator (banel_framework.curve) judged by
the classifier directly (p(target) >= threshold), without decoding samples to text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from banel_framework import curve
from banel_framework.curve import NEVER, estimate, first_rejection, proposal_draws
from banel_framework.posterior import Posterior

from .digits_data import DigitOracle

if TYPE_CHECKING:  # pragma: no cover
    from banel_framework.run import Run

__all__ = ["NEVER", "estimate", "first_rejection", "proposal_draws", "rate_curve", "ratio_rate",
           "successes"]


def successes(oracle: DigitOracle) -> curve.Successes:
    """True where the classifier calls the sample the target digit."""
    return lambda s: torch.from_numpy(oracle.target_proba(s) >= oracle.threshold)


def ratio_rate(post: Posterior, oracle: DigitOracle, **kw: Any) -> dict[str, Any]:
    """curve.ratio_rate with the classifier as the judge."""
    return curve.ratio_rate(post, successes(oracle), **kw)


def rate_curve(run: Run, oracle: DigitOracle, **kw: Any) -> list[dict[str, Any]]:
    """curve.rate_curve with the classifier as the judge."""
    return curve.rate_curve(run, successes=successes(oracle), **kw)
