"""digits-0to6: data, codec, classifier oracle, seeded prior cache, and a quick run end to end."""

import csv
import json
import sqlite3

import numpy as np
import pytest
import torch
from banel_tasks import digits_data
from banel_tasks.digits_prior import as_samples
from click.testing import CliRunner
from PIL import Image

from banel_framework import plugins
from banel_framework.cli import main
from curve import NEVER, first_rejection, oracle_successes, rate_curve, ratio_rate
from banel_plugins.banel import replay
from banel_framework.errors import BanelError, ConfigError
from banel_framework.run import open_run, plan, task_context, user_layers
from banel_framework.samples import Samples

#: A tiny transformer and a short pretraining, so that a test pretrains in a few seconds.
TINY = ["generator.options.d_model=16", "generator.options.n_layers=1",
        "generator.options.n_heads=2", "task_options.prior_epochs=20", "task_options.prior_lr=0.01",
        "trainer.num_threads=1"]


def test_classifier_is_accurate_and_the_oracle_rewards_real_sixes_only():
    clf = digits_data.classifier(4)
    assert clf.held_out_accuracy >= 0.97 and clf.n_test >= 400
    x, y = digits_data.load(4)
    oracle = digits_data.DigitOracle(clf, target=6, threshold=0.9)
    sixes, zeros = as_samples(x[y == 6], 4), as_samples(x[y == 0], 4)
    assert np.mean(oracle(sixes, [])) > 0.9
    assert np.mean(oracle(zeros, [])) < 0.01
    bad = Samples.from_sequences([[1] * 10 + [4], [1] * 65, [5] * 64 + [4]])
    assert oracle(bad, []) == [0.0, 0.0, 0.0]


def test_codec_round_trips_and_marks_malformed_samples():
    x, _ = digits_data.load(4)
    codec = digits_data.DigitCodec(4)
    seqs = as_samples(x[:50], 4).sequences()
    texts = [codec.decode(s) for s in seqs]
    assert all(len(t) == 8 * 8 + 7 for t in texts)
    assert [codec.encode(t) for t in texts] == seqs
    assert codec.decode([1, 2, 4]).startswith("malformed:")


def test_options_keep_the_target_out_of_the_prior():
    with pytest.raises(ConfigError, match="must be absent"):
        plan(user_layers(None, ["task_options.mix_digits=[5,6]"], task="digits-0to6"))


def _pretrain(sets):
    p = plan(user_layers(None, [*TINY, *sets], task="digits-0to6"))
    return p.task.pretrain(task_context(p, progress=False)), p


def test_pretraining_is_seeded_and_cached(tmp_path, monkeypatch):
    runs = []
    for name in ("a", "b"):
        monkeypatch.setenv("BANEL_CACHE", str(tmp_path / name))
        runs.append(_pretrain([])[0]["prior"])
    assert not runs[0]["cached"] and not runs[1]["cached"]
    w = [torch.load(r["checkpoint"], weights_only=True) for r in runs]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    again, p = _pretrain([])
    assert again["prior"]["cached"] and again["prior"]["checkpoint"] == runs[1]["checkpoint"]
    assert again["classifier"]["held_out_accuracy"] >= 0.97
    other, _ = _pretrain(["task_options.prior_seed=1"])
    assert other["prior"]["checkpoint"] != runs[1]["checkpoint"]
    gen = p.task.prior(task_context(p, progress=False))
    s = gen.sample(64, seed=0)
    assert digits_data.well_formed(s, 4).float().mean() > 0.5  # 20 epochs already learn the format


QUICK = [*TINY, "rounds.samples_per_round=20", "eval.samples=300", "eval.prior_samples=1000",
         "eval.final_samples=300",
         "eval.every=1", "banel.distill.enabled=true", "banel.distill.acceptance_below=1.0",
         "banel.distill.samples=100", "banel.distill.fit.epochs=1", "banel.failure_model.fit.epochs=2",
         # f = 3 keeps the acceptance near 0.3: at the task's f = 0.5 these 2-epoch regions
         # accept 5e-4 and the rejection sampling alone took 140 s
         "banel.posterior.filter_factor=3"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick BaNEL run (60 NREs, 3 rounds, distilling every round) shared by the tests below."""
    out = tmp_path_factory.mktemp("digits") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BANEL_CACHE", str(tmp_path_factory.mktemp("cache")))
        plugins.reset()
        args = ["run", "--task", "digits-0to6", "--out", str(out), "-q", "--budget", "60",
                "--seed", "1"]
        for s in QUICK:
            args += ["--set", s]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output + repr(res.exception)
    plugins.reset()
    return out


def test_quick_run_keeps_ledger_summary_and_pictures_consistent(quick_run):
    out = quick_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["nre_used"] == 60 and summary["rounds"] == 3
    assert summary["eval"]["mode"] == "sampled" and summary["eval"]["prior"]["n"] == 1000
    con = sqlite3.connect(out / "ledger.sqlite")
    rows = con.execute("SELECT key, reward FROM evaluations WHERE status='done'").fetchall()
    assert len(rows) == len({k for k, _ in rows}) == 60
    run = open_run(out)
    again = run.task.oracle(run.context)(Samples.from_keys([k for k, _ in rows]), [])
    assert again == [r for _, r in rows]  # the ledger holds what the oracle says
    assert summary["solutions_found"] == sum(1 for _, r in rows if r > 0)
    with open(out / "metrics.csv") as fh:
        metrics = list(csv.DictReader(fh))
    assert [int(m["nre_after"]) for m in metrics] == [20, 40, 60]
    assert all(m["distilled"] == "True" for m in metrics)
    for name in ("prior", "posterior", "rejected", "solutions"):
        path = out / "plots" / f"digits_{name}.png"
        assert f"plots/digits_{name}.png" in summary["plots"]
        with Image.open(path) as img:
            assert img.size[0] > 200 and img.size[1] > 100


def test_first_rejection_matches_the_posterior_and_the_ratio_estimate_is_consistent(quick_run):
    run = open_run(quick_run)
    last = list(replay(run))[-1].posterior
    assert len(last.regions) == 3
    s = run.prior.sample(400, seed=5)
    first = first_rejection(last.regions, last, s)
    assert torch.equal(first == NEVER, ~last.reject_mask(s)[0])
    assert set(first.tolist()) <= {1, 2, 3, NEVER}
    est = ratio_rate(last, oracle_successes(run), n=500, m=300, seed=0)
    # the acceptance estimated on 300 region-checked proposals agrees with plain rejection
    plain = last.draw(2000, seed=9, batch_size=500, max_draws=2000).acceptance
    assert abs(est["acceptance"] - plain) < 0.1 and est["accepted_successes"] <= 500
    with pytest.raises(BanelError, match="distilled"):
        rate_curve(run, n=100, m=100, seed=0)


def test_a_baseline_run_gets_the_pictures_that_do_not_need_a_posterior(tmp_path, monkeypatch):
    monkeypatch.setenv("BANEL_CACHE", str(tmp_path / "cache"))
    plugins.reset()
    args = ["run", "--task", "digits-0to6", "--method", "reinforce", "--out", str(tmp_path / "r"),
            "-q", "--budget", "40", "--seed", "1"]
    for s in [*TINY, "rounds.samples_per_round=20", "eval.samples=100", "eval.prior_samples=200",
              "eval.final_samples=100"]:
        args += ["--set", s]
    res = CliRunner().invoke(main, args)
    plugins.reset()
    assert res.exit_code == 0, res.output + repr(res.exception)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    digits = sorted(p for p in summary["plots"] if "digits_" in p)
    assert digits == ["plots/digits_prior.png", "plots/digits_solutions.png"]
    assert "report failed" not in (tmp_path / "r" / "run.log").read_text()


@pytest.mark.slow
def test_default_prior_rate_is_measurable_and_in_range():
    """The shipped recipe (d_model 32, 100 epochs on the zeros) lands between 1e-5 and 1e-3."""
    from banel_framework.evaluation import Evaluator
    from banel_framework.posterior import Posterior

    p = plan(user_layers(None, [], task="digits-0to6"))
    ctx = task_context(p, progress=False)
    prior = p.task.prior(ctx)
    ev = Evaluator(p.task, p.task.eval_oracle(ctx), p.task.codec(), p.config.eval, batch_size=4096)
    rate = ev.evaluate(Posterior(prior, prior, None, []), seed=3, n=102_400)
    assert rate.k >= 3 and 1e-5 < rate.ci[0] and rate.ci[1] < 1e-3
