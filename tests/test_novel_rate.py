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
    assert final["novel_rate"] < final["rate"]  # re-drawn known successes lift only the rate
    # the known successes are drawn again and again: fewer distinct than drawn successes
    assert 0 < final["novel_distinct_k"] < final["distinct_k"] < final["k"]
    assert "distinct successful samples" in res.output
    assert "already in the ledger" in res.output

    run = open_run(out)
    _, dist = run.method.final_distribution(run)
    keys = {e.key for e in run.ledger.evaluations()}
    same = run.evaluator.evaluate(dist, seed=7, n=2000, known=keys)
    none = run.evaluator.evaluate(dist, seed=7, n=2000, known=set())
    every = run.evaluator.evaluate(dist, seed=7, n=2000, known=keys | set(run.task.support().keys()))
    assert (none.novel_n, none.novel_k) == (none.n, none.k) == (same.n, same.k)
    assert every.novel_n == 0 and same.novel_n < same.n
    assert none.novel_distinct_k == none.distinct_k == same.distinct_k
    assert every.novel_distinct_k == 0
    solutions = {e.key for e in run.ledger.solutions()}
    assert same.distinct_k - same.novel_distinct_k == len(solutions & _drawn_hits(run, dist))
    assert run.evaluator.evaluate(dist, seed=7, n=2000).novel_n is None


def _drawn_hits(run, dist):
    """The successful keys among the same 2,000 draws, recomputed apart from the evaluator."""
    draw = dist.draw(2000, seed=7, batch_size=run.evaluator.batch_size,
                     max_draws=run.config.eval.max_draws)
    ok = run.evaluator.rewards(draw.samples) > 0
    return {k for k, hit in zip(draw.samples.keys(), ok.tolist()) if hit}
