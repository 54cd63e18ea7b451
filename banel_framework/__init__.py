"""BaNEL: post-train generative models from failures only, with every NRE in a ledger.

Names are imported on first use (PEP 562), so that `banel --help` starts without torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import BanelError, BudgetExceeded, ConfigError, UnknownComponentError
from .hookspecs import hookimpl

__version__ = "0.2.0"

#: Public name -> the submodule that defines it.
_LAZY = {
    "FitSettings": "config", "RunConfig": "config",
    "Codec": "interfaces", "FailureModelBuilder": "interfaces", "FitResult": "interfaces",
    "Generator": "interfaces", "LogProbModel": "interfaces", "Method": "interfaces",
    "Options": "interfaces", "PosteriorScorer": "interfaces", "RewardOracle": "interfaces",
    "Task": "interfaces", "TaskContext": "interfaces", "Tracker": "interfaces",
    "Samples": "samples",
    "Result": "api", "open_run": "api", "run": "api",
}

__all__ = sorted([*_LAZY, "BanelError", "BudgetExceeded", "ConfigError",
                  "UnknownComponentError", "__version__", "hookimpl"])


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # `run`: the function, over the submodule of that name
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .api import Result, open_run, run
    from .config import FitSettings, RunConfig
    from .interfaces import (Codec, FailureModelBuilder, FitResult, Generator, LogProbModel,
                             Method, Options, PosteriorScorer, RewardOracle, Task, TaskContext,
                             Tracker)
    from .samples import Samples
