"""BaNEL: post-train generative models from failures only, with every NRE in a ledger."""

from .config import FitSettings, RunConfig
from .errors import BanelError, BudgetExceeded, ConfigError, UnknownComponentError
from .hookspecs import hookimpl
from .interfaces import (
    Codec,
    FailureModelBuilder,
    FitResult,
    Generator,
    LogProbModel,
    Method,
    Options,
    PosteriorScorer,
    PriorContext,
    RewardOracle,
    Task,
    TaskContext,
)
from .samples import Samples

__version__ = "0.1.0"

__all__ = [
    "BanelError",
    "BudgetExceeded",
    "Codec",
    "ConfigError",
    "FailureModelBuilder",
    "FitResult",
    "FitSettings",
    "Generator",
    "LogProbModel",
    "Method",
    "Options",
    "PosteriorScorer",
    "PriorContext",
    "RewardOracle",
    "RunConfig",
    "Samples",
    "Task",
    "TaskContext",
    "UnknownComponentError",
    "__version__",
    "hookimpl",
]
