"""BaNEL's in-run advice: a warning when the regions reject almost nothing or almost everything."""

import json

from banel_plugins.banel import BanelOptions, advice
from click.testing import CliRunner

from banel_framework.cli import main


def test_advice_is_given_once_when_acceptance_stays_high_or_collapses():
    o = BanelOptions()
    assert advice([0.99, 0.98], o) is None                       # too early to say
    said = advice([0.99, 0.98, 0.97], o)
    assert "rejected almost nothing" in said and "calibrate=0.3" in said and "now 2" in said
    assert advice([0.99, 0.98, 0.97, 0.99], o) is None           # said once, not every round
    assert advice([0.99, 0.5, 0.97, 0.99], o) is None
    low = advice([0.2, 0.009, 0.004, 0.001], o)
    assert "under 1%" in low and "filter_factor" in low and "acceptance_below" in low
    off = BanelOptions.model_validate({"distill": {"enabled": False}})
    assert "banel.distill.enabled is off" in advice([0.005] * 3, off)
    assert advice([0.9, 0.6, 0.4, None, 0.2], o) is None         # a working run says nothing
    assert advice([0.2, 0.009, 0.004, 0.001], o, [0, 0, 1, 0]) is None  # concentrated, finding


def test_a_run_whose_regions_do_nothing_says_so_with_q(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, [
        "run", "--task", "toy-1d", "--budget", "60", "-q", "--out", str(out),
        "--set", "banel.posterior.filter_factor=1e9", "--set", "rounds.max_rounds=5"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("rejected almost nothing") == 1, res.stderr
    assert "warning: round 4: the regions rejected almost nothing" in (out / "run.log").read_text()
    rounds = json.loads((out / "summary.json").read_text())["rounds"]
    assert rounds == 5
