"""Shared fixtures: an isolated cache, fresh plugin state, and directories put on the path."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from banel_framework import plugins

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # one thread per worker: -n auto already puts a worker on every core, and torch's own
    # threads on top of that oversubscribe the cores (tiny models spend it on synchronising)
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)

#: Benchmark helpers (curve.py) that some tests exercise live beside the scripts.
sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))


@pytest.fixture(autouse=True)
def _isolation(tmp_path_factory, monkeypatch):
    """Every test gets its own cache and a plugin manager loaded afresh."""
    monkeypatch.setenv("BANEL_CACHE", str(tmp_path_factory.mktemp("cache")))
    for var in ("BANEL_STRICT_PLUGINS", "BANEL_LOAD_PLUGINS", "BANEL_BLOCK_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def on_path(monkeypatch):
    """Put directories on sys.path (and PYTHONPATH for subprocesses) for one test."""

    def add(path: Path) -> None:
        monkeypatch.syspath_prepend(str(path))
        old = os.environ.get("PYTHONPATH", "")
        monkeypatch.setenv("PYTHONPATH", str(path) + (os.pathsep + old if old else ""))
        importlib.invalidate_caches()
        plugins.reset()

    return add
