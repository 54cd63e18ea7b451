"""Every exact figure describes the distribution actually sampled, at rounds.temperature."""

import json

import pytest
import torch

from banel_framework.config import PosteriorConfig
from banel_framework.interfaces import LogProbModel
from banel_framework.posterior import Posterior, RejectionRegion
from banel_framework.run import build_prior, plan
from banel_plugins.posterior_scorers import RatioScorer
from helpers import cli


class Centre(LogProbModel):
    """A failure model that puts its mass on the prior's central bins."""

    def __init__(self, prior, support):
        lp = prior.log_prob(support)
        self.table = torch.where(lp > lp.max() - 1.0, lp + 3.0, lp - 3.0)

    def log_prob(self, samples):
        return self.table[samples.tokens[:, 0]]


@pytest.fixture
def toy():
    p = plan([{"task": "toy-1d", "progress": False}])
    prior = build_prior(p, progress=False)
    return prior, p.task.support()


@pytest.mark.parametrize("t", [0.5, 2.0])
def test_exact_acceptance_and_probabilities_match_the_draws(toy, t):
    prior, support = toy
    region = RejectionRegion(1, Centre(prior, support), prior)
    post = Posterior(prior, prior, RatioScorer(PosteriorConfig(filter_factor=1.5)), [region], t)
    draw = post.draw(200_000, seed=3, batch_size=50_000, max_draws=200_000)
    assert post.acceptance(support) == pytest.approx(draw.acceptance, abs=0.01)
    at_one = Posterior(prior, prior, post.scorer, [region], 1.0).acceptance(support)
    assert abs(at_one - draw.acceptance) > 0.05  # the temperature matters here
    freq = torch.bincount(draw.samples.tokens[:, 0], minlength=len(support)).double()
    freq /= freq.sum()
    assert (post.probabilities(support) - freq).abs().max() < 0.01


def test_the_prior_reference_is_measured_at_the_sampling_temperature(tmp_path, toy):
    prior, support = toy
    out = tmp_path / "run"
    res = cli("run", "--task", "toy-1d", "--method", "pretrained", "--budget", "20", "-q",
                "--out", str(out), "--set", "rounds.temperature=2.0")
    assert res.returncode == 0, res.stderr
    s = json.loads((out / "summary.json").read_text())
    ev_rate = s["eval"]["prior"]["rate"]
    t1 = Posterior(prior, prior, None, [], 1.0)
    t2 = Posterior(prior, prior, None, [], 2.0)
    assert s["temperature"] == 2.0 and s["eval"]["prior"]["exact"]
    assert ev_rate != pytest.approx(_rate(t1, support), rel=0.1)
    assert ev_rate == pytest.approx(_rate(t2, support), rel=1e-6)
    # pretrained samples the prior at the same temperature: no 'improvement' from it
    assert s["improvement"] == pytest.approx(1.0, rel=1e-6)


def _rate(post, support):
    from banel_tasks.toy1d import TailOracle

    p = plan([{"task": "toy-1d"}])
    codec = p.task.codec()
    rewards = torch.tensor(TailOracle(codec)(support, codec.decode_batch(support)))
    return float((post.probabilities(support) * rewards.double()).sum())
