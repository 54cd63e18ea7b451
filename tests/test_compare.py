"""`banel compare`: runs per method and seed, resume and skip, the table, the plot, compare.json."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.run import open_run
from banel_framework.compare import (
    RunResult,
    vs_best_other,
    curves,
    markdown_table,
    table,
)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    res = invoke(*args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


QUICK = ["--methods", "pretrained,banel,count", "--seeds", "2", "-q",
         "--set", "trainer.num_threads=1", "--method-set", "count:count.lr=0.3"]


def test_quick_comparison_then_skip_resume_and_report(tmp_path):
    out = tmp_path / "cmp"
    res = ok("compare", "--out", out, "--budget", "10", *QUICK)
    for m in ("pretrained", "banel", "count"):
        for k in (0, 1):
            assert (out / m / f"seed{k}" / "ledger.sqlite").is_file()
    c = json.loads((out / "compare.json").read_text())
    assert c["task"] == "toy-1d" and c["budget"] == 10 and c["seeds"] == [0, 1]
    assert c["methods"] == ["pretrained", "banel", "count"] and c["reference"] == "pretrained"
    assert c["prior_same_across_methods"] and len(c["runs"]) == 6
    assert all(r["nre_used"] == 10 for r in c["runs"])
    rows = {r["method"]: r for r in c["table"]}
    finals = {m: [r["final"] for r in c["runs"] if r["method"] == m] for m in rows}
    assert rows["pretrained"]["final_mean"] == pytest.approx(sum(finals["pretrained"]) / 2)
    assert rows["pretrained"]["improvement_over_prior"] == pytest.approx(
        rows["pretrained"]["final_mean"] / rows["pretrained"]["prior_mean"])
    assert rows["banel"]["final_mean"] == pytest.approx(sum(finals["banel"]) / 2)
    assert rows["banel"]["improvement"] == pytest.approx(
        rows["banel"]["final_mean"] / rows["pretrained"]["final_mean"])
    assert rows["banel"]["improvement"] > 1.1  # toy-1d: one BaNEL round lifts the rate
    assert c["settings"]["count"]["count"]["lr"] == 0.3
    assert c["settings"]["banel"]["method"] == "banel"
    assert c["curves"]["banel"]["nre"][0] == 0 and c["curves"]["banel"]["nre"][-1] == 10
    assert (out / "plots" / "compare_success.png").is_file()
    table_md = (out / "compare_table.md").read_text()
    assert "| banel | 2/2 | 10 |" in table_md and table_md.split("\n\n")[1] in res.output
    assert (out / "plots" / "compare_discovery.png").is_file()
    for r in c["runs"]:  # discovery read back from each ledger, in the order NREs were paid
        rewards = [e.reward for e in open_run(out / r["run_dir"]).ledger.evaluations()]
        hits = [i + 1 for i, x in enumerate(rewards) if x > 0]
        assert r["distinct_successes"] == len(hits)
        assert r["nre_to_first_success"] == (hits[0] if hits else None)
    for m, row in rows.items():
        per_seed = [r["distinct_successes"] for r in c["runs"] if r["method"] == m]
        assert row["distinct_mean"] == pytest.approx(sum(per_seed) / 2)
        assert row["seeds_with_success"] == sum(1 for x in per_seed if x)
        assert c["discovery_curves"][m]["max"][-1] == max(per_seed)
    assert "distinct successes: mean [95% CI]" in table_md

    res = ok("compare", "--out", out, "--budget", "10", *QUICK)  # nothing left to do
    assert res.stderr.count("skipped") == 6
    assert json.loads((out / "compare.json").read_text())["table"] == c["table"]

    res = ok("compare", "--out", out, "--budget", "20", *QUICK)  # a larger budget resumes
    assert res.stderr.count("resumed") == 6
    again = json.loads((out / "compare.json").read_text())
    assert all(r["nre_used"] == 20 for r in again["runs"]) and again["budget"] == 20
    assert {r["method"]: r for r in again["table"]}["banel"]["improvement"] > 1.3

    res = invoke("compare", "--out", out, "--budget", "20", *QUICK,
                 "--set", "banel.posterior.filter_factor=3")
    assert res.exit_code == 2 and "another configuration: banel.posterior.filter_factor" in res.stderr

    # a run directory from an older version lacks options added since: their defaults apply
    cfg = out / "banel" / "seed0" / "config.yaml"
    text = cfg.read_text()
    assert "success_neighbours: 0.0" in text
    cfg.write_text("".join(line for line in text.splitlines(keepends=True)
                           if "success_neighbours" not in line))
    res = ok("compare", "--out", out, "--budget", "20", *QUICK)
    assert res.stderr.count("skipped") == 6

    (out / "compare_table.md").unlink()
    res = ok("report", out)
    assert (out / "compare_table.md").read_text() in res.output
    res = ok("report", out / "banel" / "seed0", out / "count" / "seed1")
    assert "all runs, by method" in res.output and "| count | 1/1 | 20 |" in res.output


@pytest.mark.parametrize("args, message", [
    (["--method-set", "rnd:rnd.lr=0.1"], "'rnd', which is not among --methods"),
    (["--method-set", "count:count.lr=-1"], "count.lr"),
    (["--method-set", "count"], "--method-set expects METHOD:KEY=VALUE"),
    (["--methods", "banel,magic"], "unknown method 'magic'"),
])
def test_bad_comparisons_fail_before_any_run(tmp_path, args, message):
    out = tmp_path / "cmp"
    base = ["--methods", "banel,count", "--seeds", "1", "--budget", "10", "-q"]
    res = invoke("compare", "--out", out, *base, *args)
    assert res.exit_code == 2 and message in res.stderr, res.output
    assert not out.exists()


def fake(method: str, seed: int, prior: float, final: float, nre=100) -> RunResult:
    s = {"method": method, "seed": seed, "task": "t", "nre_budget": nre, "nre_used": nre,
         "eval": {"prior": {"rate": prior}, "final": {"rate": final}},
         "improvement": final / prior, "stop_reason": "budget spent", "wall_seconds": 1.0,
         "solutions_found": round(final * 10)}
    return RunResult(method, seed, Path("."), s, [(0, prior, None, None), (nre, final, None, None)])


def test_table_statistics_and_reference():
    rs = [fake("pretrained", 0, 0.01, 0.012), fake("pretrained", 1, 0.01, 0.008),
          fake("banel", 0, 0.01, 0.5), fake("banel", 1, 0.01, 0.3), fake("banel", 2, 0.01, 0.1),
          fake("rnd", 0, 0.01, 0.02), fake("rnd", 1, 0.01, 0.04)]
    rows, reference = table(["pretrained", "banel", "rnd"], rs)
    by = {r["method"]: r for r in rows}
    assert reference == "pretrained"
    assert by["banel"]["final_mean"] == pytest.approx(0.3)
    assert by["banel"]["final_median"] == pytest.approx(0.3)
    assert by["banel"]["final_std"] == pytest.approx(0.2)  # sample standard deviation
    assert by["banel"]["improvement"] == pytest.approx(0.3 / 0.01)  # over pretrained's final
    assert by["rnd"]["improvement"] == pytest.approx(3.0)
    assert by["rnd"]["improvement_per_seed_mean"] == pytest.approx(3.0)
    assert by["banel"]["solutions_mean"] == pytest.approx(3.0)  # (5 + 3 + 1) / 3
    vs = vs_best_other(rows)
    assert set(vs) == {"banel", "rnd"}  # pretrained learns nothing: never a competitor
    assert vs["banel"]["best_other"] == "rnd" and vs["banel"]["ratio"] == pytest.approx(10.0)
    assert vs["rnd"]["best_other"] == "banel" and vs["rnd"]["ratio"] == pytest.approx(0.1)
    rows, reference = table(["banel"], [r for r in rs if r.method == "banel"])
    assert reference == "prior" and rows[0]["improvement"] == pytest.approx(30.0)
    assert rows[0]["novel_mean"] is None and rows[0]["novel_improvement"] is None
    c = curves(["banel"], [fake("banel", 0, 0.01, 0.5, nre=50), fake("banel", 1, 0.01, 0.3)])
    assert c["banel"]["nre"] == [0, 50, 100]
    assert c["banel"]["mean"] == pytest.approx([0.01, 0.255, 0.4])  # seed 1 still at its prior
    assert c["banel"]["min"] == pytest.approx([0.01, 0.01, 0.3])


TINY = ["--task", "addition-attack", "-q", "--set", "task_options.target.steps=20",
        "--set", "task_options.attacker.queries=3000", "--set", "eval.samples=500",
        "--set", "eval.prior_samples=1000", "--set", "rounds.samples_per_round=40",
        "--set", "trainer.num_threads=1"]


@pytest.mark.slow
def test_every_method_on_a_tiny_addition_attack(tmp_path):
    out = tmp_path / "cmp"
    ok("compare", "--out", out, "--budget", "80", "--seeds", "1",
       "--methods", "pretrained,banel,reinforce,rnd,count", *TINY)
    c = json.loads((out / "compare.json").read_text())
    assert c["prior_same_across_methods"] and len(c["runs"]) == 5
    assert all(r["nre_used"] == 80 and r["final"] is not None for r in c["runs"])


def test_table_reports_the_rate_among_samples_new_to_the_ledger():
    rs = [fake("pretrained", 0, 0.01, 0.01), fake("banel", 0, 0.01, 0.5), fake("banel", 1, 0.01, 0.3)]
    for r, novel in zip(rs, (0.01, 0.1, 0.02)):
        r.summary["eval"]["final"]["novel_rate"] = novel
    rows, _ = table(["pretrained", "banel"], rs)
    by = {r["method"]: r for r in rows}
    assert by["banel"]["novel_mean"] == pytest.approx(0.06)
    assert by["banel"]["novel_improvement"] == pytest.approx(6.0)  # over pretrained's final rate
    assert "| 0.06 | 6x |" in markdown_table(rows, "pretrained", "t", 100)
    rs[2].summary["eval"]["final"].pop("novel_rate")  # one seed without it: no mean
    assert {r["method"]: r for r in table(["banel"], rs[1:])[0]}["banel"]["novel_mean"] is None


def test_table_reports_distinct_new_successes():
    rs = [fake("pretrained", 0, 0.01, 0.01), fake("banel", 0, 0.01, 0.5), fake("banel", 1, 0.01, 0.3)]
    for r, d in zip(rs, (2, 40, 10)):
        r.summary["eval"]["final"]["novel_distinct_k"] = d
    rows, _ = table(["pretrained", "banel"], rs)
    by = {r["method"]: r for r in rows}
    assert by["banel"]["novel_distinct_mean"] == 25 and by["pretrained"]["novel_distinct_mean"] == 2
    assert "| 25 |" in markdown_table(rows, "pretrained", "t", 100)
    rs[2].summary["eval"]["final"].pop("novel_distinct_k")  # one seed without it: no mean
    assert table(["banel"], rs[1:])[0][0]["novel_distinct_mean"] is None
