"""The core's own plugin: the oracle executors (methods and tasks are plugins)."""

from __future__ import annotations

from .executor import InlineExecutor, ProcessExecutor, ThreadExecutor
from .hookspecs import hookimpl


@hookimpl
def register_executors(register):
    register("inline", InlineExecutor, default=True)
    register("threads", ThreadExecutor)
    register("processes", ProcessExecutor)
