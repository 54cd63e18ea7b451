"""Each task's baseline defaults are the settings its tuning grid chose (benchmarks/results)."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from banel_framework import plugins
from banel_framework.cli import main

RESULTS = Path(__file__).parent.parent / "benchmarks" / "results"

#: task -> the tuning files (benchmarks/tune_baselines.py) whose chosen settings it ships.
TUNING = {
    "toy-1d": ["tune_toy-1d_b100"],
    # (the *_4seeds files rerun each grid's best settings on seeds 100-103, come last and win)
    "addition-attack": [f"tune_addition-attack_b7500_{m}" for m in (
        "reinforce", "rnd", "count", "nsr", "tempered", "ga",
        "reinforce_4seeds", "rnd_4seeds", "count_4seeds", "nsr_4seeds")],
    # the GA's digits grid found no six at any setting: its generic defaults stay (not listed)
    # (rnd_beta, a beta grid at rnd's chosen lr, comes after rnd and wins)
    "digits-0to6": [f"tune_digits-0to6_b5000_{m}" for m in ("reinforce", "rnd", "rnd_beta",
                                                            "count", "nsr", "tempered")],
}


def effective(*args: str) -> dict:
    res = CliRunner().invoke(main, ["config", *args])
    assert res.exit_code == 0, res.output
    return yaml.safe_load(res.output)


@pytest.mark.parametrize("task", sorted(TUNING))
def test_a_task_runs_each_baseline_with_the_settings_its_grid_chose(task):
    chosen = {}
    for name in TUNING[task]:
        data = json.loads((RESULTS / f"{name}.json").read_text())
        assert data["task"] == task
        chosen.update(data["best"])
    assert chosen
    for method, options in chosen.items():
        cfg = effective("--task", task, "--method", method)
        assert {k: cfg[method][k] for k in options} == options, (task, method)


def test_a_section_for_a_method_that_is_not_installed_is_skipped(monkeypatch):
    monkeypatch.setenv("BANEL_BLOCK_PLUGINS", "count")
    plugins.reset()
    try:  # toy-1d's defaults hold a `count` section; without the plugin, other methods still run
        cfg = effective("--task", "toy-1d", "--method", "rnd")
        assert cfg["method"] == "rnd" and "count" not in cfg
        res = CliRunner().invoke(main, ["config", "--task", "toy-1d", "--set", "count.lr=1"])
        assert res.exit_code == 2 and "count: unknown option" in res.output  # the user's is not
    finally:
        monkeypatch.delenv("BANEL_BLOCK_PLUGINS")
        plugins.reset()
