"""A distillation draw is capped: a posterior with few distinct samples does not stall a round."""

import json
import sqlite3

from click.testing import CliRunner

from banel_framework.cli import main


def test_a_dedupe_distillation_stops_at_its_draw_cap(tmp_path):
    out = tmp_path / "run"
    # toy-1d has 180 distinct samples at most: 1,000 distinct ones can never be drawn
    res = CliRunner().invoke(main, [
        "run", "--out", str(out), "-q", "--budget", "30", "--set", "rounds.samples_per_round=10",
        "--set", "banel.distill.enabled=true", "--set", "banel.distill.acceptance_below=1.0",
        "--set", "banel.distill.dedupe=true", "--set", "banel.distill.samples=1000",
        "--set", "banel.distill.max_draws=20000"])
    assert res.exit_code == 0, res.output
    con = sqlite3.connect(out / "ledger.sqlite")
    rounds = [json.loads(d) for (d,) in con.execute("SELECT data FROM rounds ORDER BY round")]
    drawn = [d["distill_drawn"] for d in rounds if "distill_drawn" in d]
    assert drawn and all(n <= 20000 for n in drawn)
    assert all(0 < d["distill_samples"] < 1000 for d in rounds if "distill_drawn" in d)
    assert "all the posterior gave in" in (out / "run.log").read_text()
