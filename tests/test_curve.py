"""The off-budget rate curve (banel_framework.curve) against exact posterior rates on toy-1d."""

import pytest
import torch
from click.testing import CliRunner

from banel_framework.cli import main
from curve import NEVER, estimate, first_rejection, rate_curve
from banel_plugins.banel import replay
from banel_framework.errors import BanelError
from banel_framework.evaluation import Evaluator
from banel_framework.run import open_run


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("curve") / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "-q", "--budget", "300",
                                    "--set", "banel.distill.enabled=false"])
    assert res.exit_code == 0, res.output
    return out


def test_rate_curve_matches_the_exact_rate_after_every_round(toy_run):
    run = open_run(toy_run)
    states = list(replay(run))
    assert len(states) >= 3
    curve = rate_curve(run, n=20000, m=20000, seed=1)
    assert [c["round"] for c in curve] == [0] + [s.round for s in states]
    ev = Evaluator(run.task, run.task.eval_oracle(run.context), run.codec, run.config.eval)
    for row, st in zip(curve[1:], states):
        exact = ev.evaluate(st.posterior, seed=0)
        assert exact.exact
        assert row["ci"][0] <= exact.rate <= row["ci"][1], (row, exact.rate)
        assert abs(row["acceptance"] - exact.acceptance) < 0.02
    assert curve[-1]["rate"] > 10 * curve[0]["rate"]
    for row in curve:
        ex = row["excluding_known"]
        assert ex["accepted_successes"] == row["accepted_successes"]
        assert ex["accepted"] <= row["accepted"]
    assert curve[0]["excluding_known"]["accepted"] == 20000


def test_first_rejection_agrees_with_the_posterior(toy_run):
    run = open_run(toy_run)
    last = list(replay(run))[-1].posterior
    s = run.prior.sample(3000, seed=3)
    first = first_rejection(last.regions, last, s)
    assert (first == NEVER).equal(~last.reject_mask(s)[0])
    assert set(first.tolist()) <= {r.round for r in last.regions} | {NEVER}


def test_estimate_interval_and_refusal_after_distillation(tmp_path):
    e = estimate(10, 1000, 50, 100)
    assert e["rate"] == pytest.approx(0.02) and e["ci"][0] < 0.02 < e["ci"][1]
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "-q", "--budget", "300",
                                    "--set", "banel.distill.enabled=true",
                                    "--set", "banel.distill.acceptance_below=1.0"])
    assert res.exit_code == 0, res.output
    with pytest.raises(BanelError, match="distilled"):
        rate_curve(open_run(out), n=100, m=100, seed=0)


def test_cached_draws_give_the_same_curve_and_refuse_another_spec_or_proposal(toy_run, tmp_path):
    run = open_run(toy_run)
    path = tmp_path / "draws.pt"
    fresh = rate_curve(run, n=4000, m=2000, seed=5)
    saved = rate_curve(run, n=4000, m=2000, seed=5, draws=path)
    reread = rate_curve(run, n=4000, m=2000, seed=5, draws=path)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in fresh]
    for other in (saved, reread):
        assert [{k: v for k, v in row.items() if k != "seconds"} for row in other] == strip
    with pytest.raises(BanelError, match="holds draws for"):
        rate_curve(run, n=4000, m=2000, seed=6, draws=path)
    data = torch.load(path, weights_only=True)
    data["fingerprint"] = data["fingerprint"] + 1.0
    torch.save(data, path)
    with pytest.raises(BanelError, match="another proposal"):
        rate_curve(run, n=4000, m=2000, seed=5, draws=path)
