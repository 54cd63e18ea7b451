"""nsr and w-reinforce: policy gradients that learn mostly or only from failures (Zhu et al. 2025).

Negative sample reinforcement pushes the likelihood of every failed sample down and leaves
successes alone: the weight of a sample is lambda for a success and -1 for a failure, with
lambda = 0 (`nsr`, the negatives-only peer of BaNEL) or 0.1 (`w-reinforce`, the paper's
weighted REINFORCE). There is no baseline: a batch of failures alone still moves the policy,
which redistributes the mass it takes from them over the other sequences in proportion to
their current probability ("The Surprising Effectiveness of Negative Reinforcement in LLM
Reasoning", arXiv 2506.01347).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Options

from .policy_gradient import PolicyGradientMethod, PolicyGradientOptions, PolicyState


class NsrOptions(PolicyGradientOptions):
    """The policy update with lambda-weighted successes and unit-weighted failures."""

    positive_weight: float = Field(
        0.0, ge=0, description="lambda: weight of a success (0: failures only, the NSR objective).")


class WReinforceOptions(NsrOptions):
    """W-REINFORCE: successes down-weighted to lambda = 0.1, as in the paper."""

    positive_weight: float = Field(0.1, ge=0, description="lambda: weight of a success.")


class NsrMethod(PolicyGradientMethod):
    """Push failures down (weight -1), successes up by lambda; no baseline."""

    name = "nsr"
    description = "Negative sample reinforcement: policy gradient on failures only (Zhu et al. 2025)."
    Options: ClassVar[type[Options]] = NsrOptions

    def advantage(self, st: PolicyState, reward: torch.Tensor,
                  extrinsic: torch.Tensor) -> tuple[torch.Tensor, float | None]:
        lam = self.options.positive_weight
        signed = torch.where(extrinsic > 0, torch.full_like(extrinsic, lam),
                             torch.full_like(extrinsic, -1.0))
        return signed + (reward - extrinsic), None  # plus any KL penalty folded into reward


class WReinforceMethod(NsrMethod):
    """NSR with successes weighted by lambda = 0.1 (the paper's W-REINFORCE)."""

    name = "w-reinforce"
    description = "Weighted REINFORCE: failures down, successes up at lambda = 0.1 (Zhu et al. 2025)."
    Options: ClassVar[type[Options]] = WReinforceOptions


@hookimpl
def register_methods(register):
    register(NsrMethod.name, NsrMethod)
    register(WReinforceMethod.name, WReinforceMethod)
