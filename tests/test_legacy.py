"""Run directories made by 0.1.0 still report and resume, making the evaluations 0.1.0 would."""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from helpers import cli

DATA = Path(__file__).parent / "data" / "run-0.1.0"


def keys(run_dir):
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return [k for (k,) in con.execute("SELECT key FROM evaluations ORDER BY id")]


@pytest.mark.parametrize("method", ["banel", "reinforce"])
def test_a_0_1_0_run_reports_and_resumes(tmp_path, method):
    run = tmp_path / method
    shutil.copytree(DATA / method, run)
    res = cli("report", str(run))
    assert res.returncode == 0, res.stderr
    warned = [line for line in res.stderr.splitlines() if "settings moved" in line]
    assert len(warned) == 1 and "failure_model -> banel.failure_model" in warned[0]
    if method == "reinforce":
        assert "method_options -> reinforce" in warned[0]
    assert "banel.samples_per_round -> rounds.samples_per_round" in warned[0]
    assert json.loads((run / "summary.json").read_text())["nre_used"] == 30
    res = cli("resume", str(run), "-q", "--budget", "50")
    assert res.returncode == 0, res.stderr
    expected = json.loads((DATA / "expected_keys.json").read_text())["keys"][method]
    assert keys(run) == expected  # the same 50 evaluations an uninterrupted 0.1.0 run made


def test_a_method_option_named_like_a_round_setting_stays_where_it_is():
    from banel_framework.legacy import migrate

    data = {"tempered": {"temperature": 2.0}, "banel": {"temperature": 0.5}}
    out, notes = migrate(data, "tempered", {}, {"tempered": {"temperature"}, "banel": set()})
    assert out["tempered"] == {"temperature": 2.0} and out["rounds"] == {"temperature": 0.5}
    assert notes == ["banel.temperature -> rounds.temperature"]
