"""banel.posterior.guard_successes: a new region never rejects a success already in the ledger."""

import csv
import math

import pytest
import torch
from banel_plugins.posterior_scorers import RatioScorer
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.config import PosteriorConfig
from banel_plugins.banel import replay
from banel_framework.errors import BanelError
from banel_framework.posterior import guard_slack
from banel_framework.run import open_run
from banel_framework.samples import Samples


def test_guard_slack_is_the_least_lowering_that_rejects_nothing():
    scorer = RatioScorer(PosteriorConfig(filter_factor=2.0, kappa=2.0))
    log_ref = torch.tensor([-5.0, -3.0, -4.0])
    log_phi = torch.tensor([-1.0, -3.0, -2.5])  # scores 3.0, -3.0, -1.0 against log 2
    slack = guard_slack(scorer, log_ref, log_phi)
    exact = (3.0 - math.log(2.0)) / 2.0  # kappa * (log_phi - s) - log_ref = log f
    assert exact < slack < exact + 2e-3
    assert not scorer.reject(log_ref, log_phi - slack).any()
    assert scorer.reject(log_ref, log_phi - (exact - 1e-3)).any()
    assert guard_slack(scorer, log_ref, log_phi - 10) == 0.0


def test_guard_slack_refuses_a_scorer_that_never_relaxes():
    class Always(RatioScorer):
        def reject(self, log_ref, log_phi):
            return torch.ones_like(log_ref, dtype=torch.bool)

    with pytest.raises(BanelError, match="reject less"):
        guard_slack(Always(PosteriorConfig()), torch.zeros(2), torch.zeros(2))


def _run(tmp_path, guard: bool):
    # failure models also fitted on the positives, so that regions do cover known successes
    out = tmp_path / f"guard-{guard}"
    res = CliRunner().invoke(main, [
        "run", "--out", str(out), "-q", "--budget", "300", "--set", "banel.distill.enabled=false",
        "--set", "banel.train_on_positives=true",
        "--set", f"banel.posterior.guard_successes={str(guard).lower()}"])
    assert res.exit_code == 0, res.output
    run = open_run(out)
    post = list(replay(run))[-1].posterior
    known = Samples.from_keys([e.key for e in run.ledger.solutions()])
    return run, post, known


def test_guarded_regions_spare_every_known_success_and_replay_the_same(tmp_path):
    run, post, known = _run(tmp_path, guard=False)
    assert len(known) > 0 and post.reject_mask(known)[0].any()  # the guard has work to do

    run, post, known = _run(tmp_path, guard=True)
    assert len(known) > 0
    assert not post.reject_mask(known)[0].any()
    rounds = {r: d for r, status, d in run.ledger.rounds() if status == "done"}
    assert any(d.get("guard_spared", 0) > 0 and d["region_slack"] > 0 for d in rounds.values())
    for region in post.regions:  # replayed from the ledger, not recomputed
        assert region.slack == rounds[region.round]["region_slack"]
    with open(run.run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert any(float(row["region_slack"] or 0) > 0 for row in rows)
