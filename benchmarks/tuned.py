"""The baselines' settings chosen by tune_baselines.py, read back from its results files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common import RESULTS


def best_settings(names: list[str]) -> dict[str, dict[str, Any]]:
    """Per method, the options with the highest mean final rate over every named tuning file."""
    rows = [row for n in names for row in json.loads((RESULTS / f"{n}.json").read_text())["rows"]]
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        m = row["method"]
        if m not in best or row["final_mean"] > best[m]["final_mean"]:
            best[m] = row
    return {m: r["options"] for m, r in best.items()}


def method_sets(settings: dict[str, dict[str, Any]]) -> list[str]:
    """--method-set strings for `banel compare`."""
    return [f"{m}:{m}.{k}={v}" for m, opts in settings.items() for k, v in opts.items()]


def tuning_files(prefix: str) -> list[str]:
    """Names of the results files whose name starts with `prefix`."""
    return sorted(p.stem for p in Path(RESULTS).glob(f"{prefix}*.json"))
