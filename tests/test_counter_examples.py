"""banel.failure_model.success_weight: known successes join phi's fit as counter-examples."""

import pytest
import torch
from banel_plugins.failure_models import FinetuneFailureModel
from banel_plugins.transformer import TransformerGenerator, TransformerOptions
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.config import FitSettings, TrainerConfig
from banel_framework.errors import BanelError
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import FailureModelBuilder
from banel_framework.plugins import PluginHost
from banel_framework.run import open_run, plan
from banel_framework.samples import Samples


def _prior():
    torch.manual_seed(0)
    opts = TransformerOptions(vocab_size=6, eos_id=5, max_len=8, d_model=32, n_layers=2,
                              n_heads=2)
    return TransformerGenerator.build(opts, TrainerConfig(accelerator="cpu"))


def test_counter_examples_lower_phi_on_successes_and_on_what_resembles_them():
    prior = _prior()
    negatives = Samples.from_keys(["1,2,3,4,5", "1,2,3,3,5", "1,2,4,4,5", "1,3,3,4,5"] * 4)
    success, lookalike = Samples.from_keys(["1,2,0,4,5"]), Samples.from_keys(["1,3,0,4,5"])
    fit = FitSettings(epochs=30, lr=3e-3, batch_size=8)
    builder = FinetuneFailureModel()
    plain, _ = builder.fit(prior, negatives, fit, from_scratch=False, seed=1)
    taught, _ = builder.fit(prior, negatives, fit, from_scratch=False, seed=1,
                            counter_examples=success, counter_weight=1.0)
    same, _ = builder.fit(prior, negatives, fit, from_scratch=False, seed=1,
                          counter_examples=success, counter_weight=0.0)

    def lp(m, s):
        return float(m.log_prob(s)[0])
    assert lp(taught, success) < lp(plain, success) - 5  # pushed out of phi
    assert lp(taught, lookalike) < lp(plain, lookalike) - 1  # and what shares its trait
    assert abs(lp(taught, negatives) - lp(plain, negatives)) < 1.0  # failures still learnt
    assert torch.allclose(same.log_prob(negatives), plain.log_prob(negatives))  # weight 0: plain


def test_runs_pass_the_ledgers_successes_so_far(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "-q", "--budget", "300",
                                    "--set", "banel.failure_model.success_weight=0.5"])
    assert res.exit_code == 0, res.output
    run = open_run(out)
    found = {}
    for r, status, data in run.ledger.rounds():
        found[r] = sum(1 for e in run.ledger.solutions() if e.round <= r)
        if data.get("failure_model"):
            assert data["phi_counter_examples"] == found[r]
    assert max(found.values()) > 0  # the test exercised counter-examples


def test_max_counter_examples_fits_a_seeded_subset_of_the_successes(tmp_path):
    from banel_plugins.banel import capped

    keys = [f"k{i}" for i in range(10)]
    assert capped(keys, None, 1) == keys and capped(keys, 10, 1) == keys
    sub = capped(keys, 4, 1)
    assert len(sub) == 4 and set(sub) <= set(keys) and sub == sorted(sub, key=keys.index)
    assert sub == capped(keys, 4, 1) and any(capped(keys, 4, s) != sub for s in range(2, 6))
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "-q", "--budget", "300",
                                    "--set", "banel.failure_model.success_weight=0.5",
                                    "--set", "banel.failure_model.max_counter_examples=2"])
    assert res.exit_code == 0, res.output
    run = open_run(out)
    used = [d["phi_counter_examples"] for _, _, d in run.ledger.rounds() if d.get("failure_model")]
    assert max(used) == 2 and len(run.ledger.solutions()) > 2  # the cap bound the fit


def test_success_weight_needs_a_builder_that_takes_counter_examples():
    class Plain(FailureModelBuilder):
        def fit(self, parent, negatives, settings, *, from_scratch, seed, **kw):
            raise AssertionError("never fitted")

    class Reg:
        @hookimpl
        def register_failure_models(self, register):
            register("plain-test", Plain)

    host = PluginHost().load()
    host.pm.register(Reg(), name="plain-test")
    with pytest.raises(BanelError, match="accepts counter-examples"):
        plan([{"banel": {"failure_model": {"name": "plain-test", "success_weight": 1.0}}}],
             host=host)
    plan([{"banel": {"failure_model": {"name": "plain-test"}}}], host=host)  # fine without
    with pytest.raises(BanelError, match="contradict"):
        plan([{"banel": {"failure_model": {"success_weight": 1.0}, "train_on_positives": True}}])
