"""The improvement's interval, and the plain warning when it does not exclude 1."""

import json

import pytest
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.evaluation import ratio_interval


@pytest.mark.parametrize("k1, n1, k0, n0", [(35, 2000, 24, 200_000), (3, 2000, 24, 200_000),
                                            (50, 100, 50, 100)])
def test_ratio_interval_holds_the_estimate_and_narrows_with_samples(k1, n1, k0, n0):
    low, high = ratio_interval(k1, n1, k0, n0)
    est = (k1 / n1) / (k0 / n0)
    assert low < est < high
    low10, high10 = ratio_interval(10 * k1, 10 * n1, 10 * k0, 10 * n0)
    assert low < low10 < est < high10 < high


def test_no_final_success_gives_a_zero_lower_bound():
    low, high = ratio_interval(0, 2000, 24, 200_000)
    assert low == 0.0 and 10 < high < 100  # 0 of 2,000 cannot rule out 12x over 1.2e-4


def test_a_run_says_when_its_interval_includes_one(tmp_path):
    out = tmp_path / "r"
    res = CliRunner().invoke(main, [
        "run", "--out", str(out), "--budget", "20", "--method", "pretrained", "-q",
        "--set", "eval.exact=never", "--set", "eval.samples=500",
        "--set", "eval.prior_samples=2000", "--set", "rounds.samples_per_round=10"])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    low, high = s["improvement_ci"]
    assert low <= 1 <= high  # pretrained is the prior: its interval must hold 1
    assert "the interval includes 1" in res.output and "raise eval.final_samples" in res.output
