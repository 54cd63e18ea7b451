"""lora failure models: one shared base, small coexisting adapters, exact reload; the full copy."""

import pytest
import torch
from banel_plugins.failure_models import FinetuneFailureModel
from banel_plugins.hf_causal_lm import HFCausalLM, HFCausalLMOptions
from banel_plugins.lora import LoraFailureModel, LoraOptions
from banel_plugins.transformer import TransformerGenerator, TransformerOptions
from hf_fixtures import *

from banel_framework.config import FitSettings, TrainerConfig
from banel_framework.errors import ConfigError

FIT = FitSettings(epochs=30, lr=0.02, batch_size=4)
LOG_F = 0.7  # log of the default filter factor 2: the region must reject its own negatives


def prior(model_dir):
    opts = HFCausalLMOptions(model=str(model_dir), prompt="Question: what is 3 + 5? Answer:",
                             max_new_tokens=10)
    return HFCausalLM.build(opts, TrainerConfig())


def unique_bytes(*models):
    """Bytes of distinct parameter storages across models (shared weights count once)."""
    seen = {}
    for m in models:
        for p in m.module.parameters():
            seen[p.untyped_storage().data_ptr()] = p.untyped_storage().nbytes()
    return sum(seen.values())


def test_adapters_share_the_base_coexist_and_leave_the_prior_alone(tiny_lm):
    base = prior(tiny_lm)
    neg1, neg2 = base.sample(8, seed=1), base.sample(8, seed=2)
    before1, before2 = base.log_prob(neg1), base.log_prob(neg2)
    builder = LoraFailureModel(LoraOptions())
    phi1, fit1 = builder.fit(base, neg1, FIT, from_scratch=False, seed=11)
    after1 = phi1.log_prob(neg1)
    assert fit1.steps == 60 and fit1.extra["adapter_bytes"] == phi1.adapter_bytes() > 0
    assert all(p.grad is None for p in phi1.host.model.parameters())
    assert bool((after1 - before1 > LOG_F).all())  # p_phi / p_theta > f on its negatives
    phi2, _ = builder.fit(base, neg2, FIT, from_scratch=False, seed=12)
    assert bool((phi2.log_prob(neg2) - before2 > LOG_F).all())
    assert torch.equal(phi1.log_prob(neg1), after1)  # adapter 1 untouched by fitting adapter 2
    assert torch.equal(base.log_prob(neg1), before1)  # the prior is the bare base
    assert phi1.host is phi2.host
    base_storages = {p.untyped_storage().data_ptr() for p in base.module.parameters()}
    host_base = {p.untyped_storage().data_ptr() for n, p in phi1.host.model.named_parameters()
                 if "lora_" not in n}
    assert host_base == base_storages  # one base in memory
    grown = unique_bytes(base, phi1, phi2) - unique_bytes(base)
    assert grown == phi1.adapter_bytes() + phi2.adapter_bytes()
    assert phi1.adapter_bytes() < 0.25 * unique_bytes(base)
    s = phi1.sample(6, seed=0)  # an adapter samples like any generator
    assert torch.allclose(phi1.log_prob(s), s.log_prob, atol=1e-4)


def test_saved_adapters_reload_exactly_and_fits_are_reproducible(tiny_lm, tmp_path):
    base = prior(tiny_lm)
    neg = base.sample(8, seed=1)
    builder = LoraFailureModel(LoraOptions())
    phi, _ = builder.fit(base, neg, FIT, from_scratch=False, seed=5)
    phi.save(tmp_path / "phi.pt")
    size = (tmp_path / "phi.pt").stat().st_size
    assert size < 0.25 * (tiny_lm / "model.safetensors").stat().st_size
    fresh_base = prior(tiny_lm)  # as on resume: a new process, a new prior
    back = builder.load(fresh_base, tmp_path / "phi.pt")
    assert torch.equal(back.log_prob(neg), phi.log_prob(neg))
    again, _ = builder.fit(fresh_base, neg, FIT, from_scratch=False, seed=5)
    assert torch.allclose(again.log_prob(neg), phi.log_prob(neg), atol=1e-5)
    other, _ = builder.fit(fresh_base, neg, FIT, from_scratch=False, seed=6)
    assert not torch.allclose(other.log_prob(neg), phi.log_prob(neg), atol=1e-3)


def test_full_copy_failure_model_grows_by_one_model_a_round(tiny_lm, tmp_path):
    base = prior(tiny_lm)
    neg = base.sample(8, seed=1)
    builder = FinetuneFailureModel()
    phi, _ = builder.fit(base, neg, FIT, from_scratch=False, seed=5)
    assert bool((phi.log_prob(neg) - base.log_prob(neg) > LOG_F).all())
    assert unique_bytes(base, phi) == 2 * unique_bytes(base)
    phi.save(tmp_path / "full.pt")
    back = builder.load(base, tmp_path / "full.pt")
    assert torch.equal(back.log_prob(neg), phi.log_prob(neg))


def test_lora_refuses_what_it_cannot_do(tiny_lm):
    base = prior(tiny_lm)
    neg = base.sample(2, seed=0)
    with pytest.raises(ConfigError, match="init=scratch"):
        LoraFailureModel().fit(base, neg, FIT, from_scratch=True, seed=0)
    small = TransformerGenerator.build(TransformerOptions(vocab_size=5, eos_id=0, d_model=8,
                                                         n_layers=1, n_heads=1), TrainerConfig())
    with pytest.raises(ConfigError, match="needs the hf-causal-lm generator"):
        LoraFailureModel().fit(small, small.sample(2, seed=0), FIT, from_scratch=False, seed=0)


def test_lora_from_scratch_is_refused_before_any_nre(tmp_path):
    from click.testing import CliRunner

    from banel_framework.cli import main

    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--task", "math-qa", "--out", str(out), "-q",
                                    "--set", "banel.failure_model.init=scratch"])
    assert res.exit_code == 2 and "init=scratch" in res.stderr
    assert not out.exists()


def test_lora_adapters_take_counter_examples(tiny_lm):
    base = prior(tiny_lm)
    drawn = base.sample(9, seed=3)
    neg, known = drawn.select(list(range(8))), drawn.select([8])
    builder = LoraFailureModel(LoraOptions())
    plain, _ = builder.fit(base, neg, FIT, from_scratch=False, seed=5)
    taught, _ = builder.fit(base, neg, FIT, from_scratch=False, seed=5,
                            counter_examples=known, counter_weight=1.0)
    t, p = float(taught.log_prob(known)[0]), float(plain.log_prob(known)[0])
    assert t < p - 1
    assert LoraFailureModel.accepts_counter_examples


def test_rebuilding_a_posterior_reuses_the_adapters_it_loaded(tiny_lm, tmp_path):
    base = prior(tiny_lm)
    builder = LoraFailureModel(LoraOptions())
    paths = []
    for r in range(3):
        phi, _ = builder.fit(base, base.sample(4, seed=r), FitSettings(epochs=1),
                             from_scratch=False, seed=r)
        paths.append(tmp_path / f"phi{r}.pt")
        phi.save(paths[-1])
    host = phi.host
    assert len(host.adapters()) == 3
    fresh = prior(tiny_lm)  # a resumed run: a new prior, its own host
    first = [builder.load(fresh, p) for p in paths]
    for _ in range(20):  # restore, then final_distribution, round after round
        again = [builder.load(fresh, p) for p in paths]
        assert all(a is b for a, b in zip(first, again))
    assert len(first[0].host.adapters()) == 3  # one adapter per round, not 3 x 21
    assert [builder.load(base, p) for p in paths][0].host is host and len(host.adapters()) == 3
