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
    RewardOracle,
    Task,
    TaskContext,
    Tracker,
)
from .samples import Samples

# last: binds the name `run` to the function, over the submodule of that name
from .api import Result, open_run, run  # noqa: E402

__version__ = "0.2.0"

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
    "Result",
    "RewardOracle",
    "RunConfig",
    "Samples",
    "Task",
    "TaskContext",
    "Tracker",
    "UnknownComponentError",
    "__version__",
    "hookimpl",
    "open_run",
    "run",
]
