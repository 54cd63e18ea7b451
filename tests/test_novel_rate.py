"""The final evaluation also counts samples the ledger has not seen, and their successes."""

import json

from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.run import open_run


def test_final_rate_splits_samples_already_in_the_ledger(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "--budget", "80",
                                    "--set", "eval.exact=never", "--set", "eval.every=50",
                                    "--set", "eval.final_samples=3000"])
    assert res.exit_code == 0, res.output
    final = json.loads((out / "summary.json").read_text())["eval"]["final"]
    assert 0 < final["novel_n"] < final["n"]  # the toy's posterior re-draws its 2 known successes
    assert 0 < final["novel_k"] < final["k"]
    assert final["novel_rate"] == final["novel_k"] / final["novel_n"]
    assert "already in the ledger" in res.output

    run = open_run(out)
    _, dist = run.method.final_distribution(run)
    keys = {e.key for e in run.ledger.evaluations()}
    same = run.evaluator.evaluate(dist, seed=7, n=2000, known=keys)
    none = run.evaluator.evaluate(dist, seed=7, n=2000, known=set())
    every = run.evaluator.evaluate(dist, seed=7, n=2000, known=keys | set(run.task.support().keys()))
    assert (none.novel_n, none.novel_k) == (none.n, none.k) == (same.n, same.k)
    assert every.novel_n == 0 and same.novel_n < same.n
    assert run.evaluator.evaluate(dist, seed=7, n=2000).novel_n is None
