import math

import pytest
import torch
from banel_plugins.categorical import CategoricalGenerator, CategoricalOptions
from banel_plugins.failure_models import FinetuneFailureModel
from banel_plugins.posterior_scorers import RatioScorer

from banel_framework.config import FitSettings, PosteriorConfig, TrainerConfig
from banel_framework.evaluation import clopper_pearson
from banel_framework.posterior import Posterior, RejectionRegion
from banel_framework.samples import Samples


def cat(log_probs):
    opts = CategoricalOptions(vocab_size=len(log_probs), init_log_probs=log_probs)
    return CategoricalGenerator.build(opts, TrainerConfig(accelerator="cpu"))


def uniform(k):
    return cat([-math.log(k)] * k)


class Counting:
    """A failure model that assigns fixed log-probs and counts the rows it scored."""

    def __init__(self, table):
        self.table = torch.tensor(table, dtype=torch.float32)
        self.scored = 0

    def log_prob(self, samples):
        self.scored += len(samples)
        return self.table[samples.tokens[:, 0]]


def test_ratio_scorer_follows_f_and_kappa():
    sc = RatioScorer(PosteriorConfig(filter_factor=2.0, kappa=1.0))
    log_ref = torch.log(torch.tensor([0.1, 0.1, 0.1]))
    log_phi = torch.log(torch.tensor([0.15, 0.21, 0.05]))
    assert sc.reject(log_ref, log_phi).tolist() == [False, True, False]
    sc2 = RatioScorer(PosteriorConfig(filter_factor=2.0, kappa=2.0))  # p_phi^2 is smaller
    assert not sc2.reject(log_ref, log_phi).any()


def test_regions_that_reject_most_go_first_and_rejected_rows_are_not_rescored():
    prior = uniform(4)
    scorer = RatioScorer(PosteriorConfig(filter_factor=1.5))
    rare = Counting([math.log(0.25)] * 3 + [0.0])  # rejects token 3 only
    broad = Counting([0.0, 0.0, math.log(0.25), math.log(0.25)])  # rejects tokens 0 and 1
    post = Posterior(prior, prior, scorer, [RejectionRegion(1, rare, prior),
                                            RejectionRegion(2, broad, prior)])
    post.regions[1].checked, post.regions[1].rejected = 100, 60  # history: broad rejects more
    batch = Samples.from_sequences([[0], [1], [2], [3]] * 25)
    rejected, by_region = post.reject_mask(batch)
    assert rejected.view(25, 4).tolist() == [[True, True, False, True]] * 25
    assert broad.scored == 100 and rare.scored == 50  # early exit: rare saw only survivors
    assert by_region == {2: 50, 1: 25}


def test_draw_returns_unique_new_candidates_and_stops_at_the_cap():
    prior = uniform(10)
    post = Posterior(prior, prior, RatioScorer(PosteriorConfig()))
    known = {"0", "1", "2"}
    res = post.draw(5, seed=1, batch_size=64, max_draws=10_000, exclude=known.__contains__,
                    unique=True)
    keys = res.samples.keys()
    assert len(keys) == 5 and len(set(keys)) == 5 and not set(keys) & known
    capped = post.draw(20, seed=1, batch_size=64, max_draws=256, unique=True)
    assert capped.capped and len(capped.samples) == 10 and capped.drawn == 256


def test_draw_is_reproducible_from_its_seed():
    prior = uniform(50)
    post = Posterior(prior, prior, RatioScorer(PosteriorConfig()))
    a = post.draw(30, seed=7, batch_size=8, max_draws=1000).samples.keys()
    b = post.draw(30, seed=7, batch_size=8, max_draws=1000).samples.keys()
    assert a == b


def test_exact_posterior_matches_rejection_sampling():
    prior = cat(torch.log_softmax(torch.linspace(0, 2, 6), 0).tolist())
    phi = Counting([0.0, math.log(1e-3), 0.0, math.log(1e-3), math.log(1e-3), math.log(1e-3)])
    post = Posterior(prior, prior, RatioScorer(PosteriorConfig(filter_factor=2.0)),
                     [RejectionRegion(1, phi, prior)])
    support = Samples.from_sequences([[i] for i in range(6)])
    exact = post.probabilities(support)
    assert exact[0] == 0 and exact[2] == 0 and float(exact.sum()) == pytest.approx(1.0)
    draws = post.draw(20000, seed=3, batch_size=4096, max_draws=10**6).samples
    freq = torch.bincount(draws.tokens[:, 0], minlength=6).double() / len(draws)
    assert torch.allclose(freq, exact, atol=0.01)
    assert post.acceptance(support) == pytest.approx(float(1 - prior.log_prob(
        Samples.from_sequences([[0], [2]])).exp().sum()), rel=1e-5)


def test_finetuned_failure_model_rejects_seen_negatives_and_keeps_the_rest():
    k = 20
    prior = uniform(k)
    negatives = Samples.from_sequences([[i] for i in range(5)])
    phi, fit = FinetuneFailureModel().fit(prior, negatives, FitSettings(epochs=30, lr=0.1),
                                          from_scratch=False, seed=0)
    assert fit.steps > 0 and fit.final_loss < math.log(k)
    post = Posterior(prior, prior, RatioScorer(PosteriorConfig(filter_factor=2.0)),
                     [RejectionRegion(1, phi, prior)])
    rejected, _ = post.reject_mask(Samples.from_sequences([[i] for i in range(k)]))
    assert rejected[:5].all() and not rejected[5:].any()


def test_clopper_pearson_known_values():
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0 and hi == pytest.approx(0.3084971, rel=1e-5)
    lo, hi = clopper_pearson(5, 10)
    assert lo == pytest.approx(0.1870860, rel=1e-5) and hi == pytest.approx(0.8129140, rel=1e-5)
    assert clopper_pearson(10, 10)[1] == 1.0


def test_mixture_samples_and_scores_the_mixture():
    from banel_framework.mixture import Mixture

    a = cat([0.0, -50.0, -50.0])  # almost surely token 0
    b = cat([-50.0, -50.0, 0.0])  # almost surely token 2
    m = Mixture(a, b, 0.25)
    s = m.sample(8000, seed=0)
    share = float((s.tokens[:, 0] == 2).float().mean())
    assert abs(share - 0.25) < 0.02
    # the mixture's exact probabilities: token 0 has 0.75 of the mass, token 2 has 0.25
    expected = torch.where(s.tokens[:, 0] == 2, math.log(0.25), math.log(0.75))
    assert torch.allclose(s.log_prob, expected, atol=1e-4)
    assert float(m.log_prob(Samples.from_sequences([[2]]))) == pytest.approx(math.log(0.25), abs=1e-4)
