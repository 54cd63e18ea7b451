"""The core's own plugin: the BaNEL method and the pretrained baseline."""

from __future__ import annotations

from .engine import BanelMethod, PretrainedMethod
from .hookspecs import hookimpl


@hookimpl
def register_methods(register):
    register(BanelMethod.name, BanelMethod)
    register(PretrainedMethod.name, PretrainedMethod)
