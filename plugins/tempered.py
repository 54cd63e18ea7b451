"""tempered: new samples from the prior at a raised temperature; the simplest way to be novel."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Options
from banel_framework.posterior import Posterior
from banel_framework.rounds import Batch, Proposal, RoundMethod, draw_new
from banel_framework.run import Run


class TemperedOptions(Options):
    """The temperature the prior is sampled at."""

    temperature: float = Field(1.5, gt=0, description="Sampling temperature of the prior "
                               "(> 1: flatter, more of the prior's unlikely samples).")


class TemperedMethod(RoundMethod):
    """Spend the budget on new prior samples at a raised temperature; learn nothing."""

    name = "tempered"
    description = "New prior samples at a raised temperature (no learning; a novelty baseline)."
    Options = TemperedOptions

    def restore(self, run: Run) -> None:
        return None  # nothing is learned: no state to rebuild

    def sampler(self, run: Run, state: None) -> Posterior:
        return Posterior(run.prior, run.prior, None, [], self.options.temperature)

    def propose(self, run: Run, state: None, r: int, n: int) -> Proposal:
        return draw_new(run, self.sampler(run, state), r, n)

    def learn(self, run: Run, state: None, r: int, batch: Batch) -> dict[str, Any]:
        return {"batch_successes": sum(1 for x in batch.rewards if x > 0)}


@hookimpl
def register_methods(register):
    register(TemperedMethod.name, TemperedMethod)
