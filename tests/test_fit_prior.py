"""TaskContext.fit_prior: a prior fitted on a task's data, cached by data and settings only."""

import json

import pytest
import torch
from banel_plugins.transformer import TransformerGenerator, TransformerOptions

from banel_framework import FitSettings, Samples, TaskContext
from banel_framework.config import TrainerConfig
from banel_framework.priors import cached_priors


def context(tmp_path, seed=0, **options):
    trainer = TrainerConfig(accelerator="cpu")

    def build(**arch):
        return TransformerGenerator.build(TransformerOptions(**{**arch, **options}), trainer)

    return TaskContext("transformer", options, build, tmp_path / "cache", trainer, seed,
                       progress=False)


def data(n=64):
    seqs = [[1 + (i % 3), 2, 3 + (i % 2), 5] for i in range(n)]
    return Samples.from_sequences(seqs)


ARCH = dict(vocab_size=6, eos_id=5, max_len=8, d_model=16, n_layers=1, n_heads=2)
FIT = FitSettings(epochs=3, lr=1e-2, batch_size=16)


def test_a_prior_is_fitted_once_and_shared_across_run_seeds(tmp_path):
    first = context(tmp_path, seed=11).fit_prior(data(), FIT, seed=0, **ARCH)
    fresh = TransformerGenerator.build(TransformerOptions(**ARCH), TrainerConfig(accelerator="cpu"))
    probe = data(8)
    assert (first.log_prob(probe) > fresh.log_prob(probe) + 0.5).all()  # it learnt the data
    ckpts = sorted((tmp_path / "cache").glob("prior-*.pt"))
    assert len(ckpts) == 1
    stamp = ckpts[0].stat().st_mtime_ns
    again = context(tmp_path, seed=12).fit_prior(data(), FIT, seed=0, **ARCH)  # another run seed
    assert ckpts[0].stat().st_mtime_ns == stamp  # loaded, not refitted
    assert torch.allclose(again.log_prob(probe), first.log_prob(probe))
    rec = cached_priors(tmp_path / "cache")
    assert len(rec) == 1 and rec[0]["sequences"] == 64 and rec[0]["fit"]["epochs"] == 3
    assert rec[0]["steps"] == 12 and rec[0]["seconds"] > 0


def test_data_settings_seed_and_user_options_each_make_a_new_prior(tmp_path):
    ctx = context(tmp_path)
    ctx.fit_prior(data(), FIT, seed=0, **ARCH)
    ctx.fit_prior(data(48), FIT, seed=0, **ARCH)                       # other data
    ctx.fit_prior(data(), FitSettings(epochs=2, lr=1e-2, batch_size=16), seed=0, **ARCH)
    ctx.fit_prior(data(), FIT, seed=1, **ARCH)                         # other prior seed
    context(tmp_path, d_model=8).fit_prior(data(), FIT, seed=0, **ARCH)  # generator.options
    assert len(list((tmp_path / "cache").glob("prior-*.pt"))) == 5
    archs = {json.dumps(r["architecture"], sort_keys=True) for r in cached_priors(tmp_path / "cache")}
    assert len(archs) == 2


def test_no_data_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least one training sequence"):
        context(tmp_path).fit_prior(Samples.from_sequences([]), FIT, **ARCH)
