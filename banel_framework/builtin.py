"""The core's own plugin: the in-process oracle executor (methods and tasks are plugins)."""

from __future__ import annotations

from .executor import InlineExecutor
from .hookspecs import hookimpl


@hookimpl
def register_executors(register):
    register("inline", InlineExecutor, default=True)
