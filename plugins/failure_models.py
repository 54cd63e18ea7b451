"""The default failure model: the parent generator fine-tuned on a round's negatives."""

from __future__ import annotations

from banel_framework.config import FitSettings
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import FailureModelBuilder, FitResult, Generator, LogProbModel
from banel_framework.samples import Samples


class FinetuneFailureModel(FailureModelBuilder):
    """p_phi = a copy of the parent (or a fresh model) fitted by maximum likelihood on negatives."""

    def fit(self, parent: Generator, negatives: Samples, settings: FitSettings, *,
            from_scratch: bool, seed: int) -> tuple[LogProbModel, FitResult]:
        phi = parent.fresh() if from_scratch else parent.clone()
        result = phi.fit(negatives, settings, seed=seed)
        return phi, result


@hookimpl
def register_failure_models(register):
    register("finetune", FinetuneFailureModel)
