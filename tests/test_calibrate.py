"""banel.posterior.calibrate: each region's threshold set from negatives its fit never saw."""

import pytest
import torch
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.config import PosteriorConfig
from banel_framework.posterior import calibrated_slack
from banel_framework.run import open_run
from banel_framework.samples import Samples
from banel_plugins.posterior_scorers import RatioScorer


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_the_slack_rejects_the_asked_share(share):
    scorer = RatioScorer(PosteriorConfig(filter_factor=2.0))
    log_phi = torch.linspace(-5, 5, 1001)
    slack = calibrated_slack(scorer, torch.zeros(1001), log_phi, share)
    got = float(scorer.reject(torch.zeros(1001), log_phi - slack).double().mean())
    assert got == pytest.approx(share, abs=0.002)


def test_calibrated_regions_reject_that_share_of_their_round(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--budget", "60", "-q", "--out", str(out),
                                    "--set", "banel.posterior.calibrate=0.5",
                                    "--set", "banel.posterior.holdout=0.5"])
    assert res.exit_code == 0, res.output
    run = open_run(out)
    rounds = {r: d for r, _, d in run.ledger.rounds()}
    assert all(d["holdout_negatives"] == 5 for d in rounds.values() if d.get("failure_model"))
    post = run.method.final_distribution(run)[1]
    for region in post.regions:
        negs = [e.key for e in run.ledger.evaluations(round_=region.round) if e.reward == 0]
        s = Samples.from_keys(negs)
        rej = run.method.scorer.reject(region.reference.log_prob(s),
                                       region.failure_model.log_prob(s) - region.slack)
        # half the round's negatives were fitted (rejected), half held out (half rejected)
        assert 0.5 <= float(rej.double().mean()) < 1.0
