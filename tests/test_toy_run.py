"""The toy-1d task end to end: the README's default run, its outputs, and the report."""

import csv
import json
import sqlite3

import pytest
from click.testing import CliRunner

from banel_framework.cli import main


def run_cli(*args):
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def test_default_run_lifts_the_toy_success_rate(tmp_path):
    out = tmp_path / "run"
    res = run_cli("run", "--out", str(out), "-q")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "toy-1d" and summary["method"] == "banel"
    prior, final = summary["eval"]["prior"], summary["eval"]["final"]
    assert prior["exact"] and 5e-4 < prior["rate"] < 2e-3
    assert final["exact"] and final["rate"] >= 0.5
    assert summary["nre_used"] <= 2000 and summary["nre_budget"] == 2000
    assert summary["improvement"] >= 0.5 / prior["rate"]
    assert summary["solutions_found"] == len(summary["solutions"]) > 0
    for key in ("seed", "rounds", "wall_seconds", "stop_reason"):
        assert key in summary
    assert summary["eval"]["best"]["rate"] >= final["rate"]
    for f in ("config.yaml", "ledger.sqlite", "metrics.csv", "plots/success_rate.png",
              "plots/acceptance.png", "plots/toy1d_rounds.png", "checkpoints/prior.pt"):
        assert (out / f).is_file(), f
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == summary["rounds"]
    assert int(rows[-1]["nre_after"]) == summary["nre_used"]
    assert "improvement (final/prior)" in res.output
    # time per phase, summed from the rounds' own columns; resident memory a round
    ph = summary["phase_seconds"]
    assert set(ph) == {"propose", "oracle", "learn", "finish", "eval", "prior_eval",
                       "final_eval", "other"}
    # metrics.csv keeps 6 significant digits: each row within 5e-6 of its value, so the sum too
    assert ph["learn"] == pytest.approx(sum(float(r["learn_seconds"]) for r in rows), rel=5e-6)
    assert ph["learn"] > 0 and ph["propose"] > 0
    assert sum(ph.values()) == pytest.approx(summary["wall_seconds"], rel=1e-6)
    assert "time: propose" in res.output
    assert all(float(r["rss_mib"]) > 50 for r in rows)  # a process holding torch
    assert summary["rss_mib"]["last_round"] == pytest.approx(float(rows[-1]["rss_mib"]), rel=1e-4)
    con = sqlite3.connect(out / "ledger.sqlite")
    keys = [k for (k,) in con.execute("SELECT key FROM evaluations")]
    assert len(keys) == len(set(keys)) == summary["nre_used"]
    assert con.execute("SELECT COUNT(*) FROM evaluations WHERE status != 'done'").fetchone()[0] == 0


def test_report_rebuilds_the_same_summary_from_the_run_directory(tmp_path):
    out = tmp_path / "run"
    run_cli("run", "--out", str(out), "-q", "--budget", "60")
    first = json.loads((out / "summary.json").read_text())
    (out / "summary.json").unlink()
    (out / "plots" / "toy1d_rounds.png").unlink()
    res = run_cli("report", str(out))
    again = json.loads((out / "summary.json").read_text())
    first.pop("wall_seconds"), again.pop("wall_seconds")
    assert again == first
    assert (out / "plots" / "toy1d_rounds.png").is_file()
    assert "plots:" in res.output


def test_pretrained_baseline_spends_the_budget_without_learning(tmp_path):
    out = tmp_path / "run"
    run_cli("run", "--out", str(out), "-q", "--method", "pretrained", "--budget", "40")
    s = json.loads((out / "summary.json").read_text())
    assert s["method"] == "pretrained" and s["nre_used"] == 40
    assert s["eval"]["final"]["rate"] == s["eval"]["prior"]["rate"]
    assert not list((out / "checkpoints").glob("failure_model_*"))


def test_same_seed_same_ledger(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        run_cli("run", "--out", str(d), "-q", "--budget", "50", "--seed", "3")
    keys = [[k for (k,) in sqlite3.connect(d / "ledger.sqlite").execute(
        "SELECT key FROM evaluations ORDER BY id")] for d in (a, b)]
    assert keys[0] == keys[1] and len(keys[0]) == 50


def test_distillation_keeps_the_toy_working(tmp_path):
    out = tmp_path / "run"
    run_cli("run", "--out", str(out), "-q", "--set", "banel.distill.enabled=true",
            "--set", "banel.distill.acceptance_below=0.05",
            "--set", "banel.distill.fit.epochs=50", "--set", "banel.distill.fit.lr=0.1")
    s = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert any(r["distilled"] == "True" for r in rows)
    assert list((out / "checkpoints").glob("proposal_r*.pt"))
    assert s["eval"]["final"]["rate"] > 10 * s["eval"]["prior"]["rate"]


def test_select_best_observed_picks_the_posterior_whose_candidates_succeeded_most(tmp_path):
    out = tmp_path / "run"
    run_cli("run", "--out", str(out), "-q", "--budget", "80", "--set",
            "banel.select=best-observed", "--set", "eval.final_samples=100")
    s = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    rates = {int(r["round"]) - 1: int(r["successes"]) / int(r["nre_round"]) for r in rows}
    best = max(rates.values())
    assert best > 0
    assert s["final_round"] == max(k for k, v in rates.items() if v == best)
    chosen = next((r for r in rows if int(r["round"]) == s["final_round"]), None)
    assert chosen is not None
    assert s["eval"]["final"]["rate"] == pytest.approx(float(chosen["eval_rate"]), rel=1e-5)
    assert s["eval"]["last"]["rate"] == pytest.approx(float(rows[-1]["eval_rate"]), rel=1e-5)


def test_a_quiet_run_can_be_followed_round_by_round(tmp_path):
    from click.testing import CliRunner

    from banel_framework.cli import main

    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "-q", "--budget", "30", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = [x for x in (out / "run.log").read_text().splitlines() if " round " in x
             and "NREs" in x]
    assert [x.split("round ")[1].split(":")[0] for x in lines] == ["1", "2", "3"]
    assert "30/30 NREs" in lines[-1]


def test_a_free_check_that_raises_is_named_as_the_tasks_error(tmp_path, monkeypatch):
    """rounds.free_check with a task whose valid() is broken: a clear error, no traceback."""
    from banel_tasks.toy1d import Toy1d

    def broken(self, text):
        raise ValueError("no check here")

    monkeypatch.setattr(Toy1d, "valid", broken)
    res = CliRunner().invoke(main, ["run", "--task", "toy-1d", "--out", str(tmp_path / "r"),
                                    "--budget", "20", "-q", "--set", "rounds.free_check=true"])
    assert res.exit_code != 0
    assert "task 'toy-1d': valid(" in res.output and "no check here" in res.output
    assert "Traceback" not in res.output


def test_banel_temperature_samples_the_posterior_hotter_against_the_usual_prior(tmp_path):
    """banel.temperature: the same run as rounds.temperature, but the prior's rate stays at 1."""
    from banel_framework.run import open_run

    def ran(name, key):
        out = tmp_path / name
        run_cli("run", "--task", "toy-1d", "--out", str(out), "--budget", "60", "-q",
                "--set", f"{key}=1.5")
        run = open_run(out)
        return run, json.loads((out / "summary.json").read_text())

    shared, s1 = ran("rounds", "rounds.temperature")
    own, s2 = ran("banel", "banel.temperature")
    assert [e.text for e in own.ledger.evaluations()] == \
        [e.text for e in shared.ledger.evaluations()]  # every draw at 1.5 in both
    assert s2["eval"]["final"]["rate"] == s1["eval"]["final"]["rate"]
    assert s1["temperature"] == 1.5 and s2["temperature"] == 1.0
    assert s2["eval"]["prior"]["rate"] != s1["eval"]["prior"]["rate"]  # the prior at 1, not 1.5
    assert own.method.distribution(own).temperature == 1.5
