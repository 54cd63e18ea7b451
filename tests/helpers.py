"""Helpers for tests: installing plugin packages on a path, running the `banel` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

from banel_framework.testing import install_on_path  # noqa: F401 - re-exported for the tests

HERE = Path(__file__).parent
EXAMPLE = HERE / "example_plugin"
BROKEN = HERE / "broken_plugin"


def install_example(dest: Path) -> Path:
    """The example task package, entry points read from its own pyproject.toml."""
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    return install_on_path(dest, meta["name"], meta["version"], meta["entry-points"]["banel"],
                           [EXAMPLE / "banel_example_task"])


def install_broken(dest: Path) -> Path:
    """Two broken plugins: one fails to import, one misspells a hook."""
    return install_on_path(dest, "banel-broken", "0.0.1",
                           {"broken": "banel_broken", "typo": "banel_typo"},
                           [BROKEN / "banel_broken.py", BROKEN / "banel_typo.py"])


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run `banel ARGS` in this process through click's CliRunner (warm imports, no interpreter
    to start); returns what banel() returns, an unexpected exception's traceback in stderr."""
    import traceback

    from click.testing import CliRunner

    from banel_framework.cli import main

    res = CliRunner().invoke(main, list(args))
    err = res.stderr
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        err += "".join(traceback.format_exception(res.exception))
    return subprocess.CompletedProcess(["banel", *args], res.exit_code, res.stdout, err)


def banel(*args: str, timeout: float = 300, env: dict | None = None,
          cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed `banel` command in a subprocess."""
    exe = Path(sys.executable).with_name("banel")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "banel_framework.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)
