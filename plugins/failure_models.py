"""The default failure model: the parent generator fine-tuned on a round's negatives."""

from __future__ import annotations

from banel_framework.config import FitSettings
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import FailureModelBuilder, FitResult, Generator, LogProbModel
from banel_framework.samples import Samples


class FinetuneFailureModel(FailureModelBuilder):
    """p_phi = a copy of the parent (or a fresh model) fitted by maximum likelihood on negatives.

    Counter-examples (known successes) join the fit with a negative weight, so that phi
    learns what the failures have and the successes lack.
    """

    accepts_counter_examples = True

    def fit(self, parent: Generator, negatives: Samples, settings: FitSettings, *,
            from_scratch: bool, seed: int, counter_examples: Samples | None = None,
            counter_weight: float = 0.0) -> tuple[LogProbModel, FitResult]:
        phi = parent.fresh() if from_scratch else parent.clone()
        return phi, self.fit_on(phi, negatives, settings, seed=seed,
                                counter_examples=counter_examples, counter_weight=counter_weight)


@hookimpl
def register_failure_models(register):
    register("finetune", FinetuneFailureModel)
