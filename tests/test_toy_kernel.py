"""toy-1d's ordinal-kernel failure model: its regions reject a failure's neighbours, and on the
sparse suite's toy tail that reaches successes the finetune failure model does not."""

import json

import pytest
import yaml
import torch
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.config import FitSettings, TrainerConfig
from banel_framework.errors import ConfigError
from banel_framework.samples import Samples
from banel_plugins.categorical import CategoricalGenerator, CategoricalOptions
from banel_tasks.toy1d import Toy1dOptions, gaussian_log_probs
from banel_tasks.toy1d_kernel import OrdinalKernelFailureModel, OrdinalKernelOptions

TAIL = ["task_options.low=-4", "task_options.high=5", "task_options.bins=180",
        "task_options.success_above=4.26"]


def prior(bins=100):
    lp = gaussian_log_probs(Toy1dOptions(bins=bins))
    return CategoricalGenerator.build(CategoricalOptions(vocab_size=bins, init_log_probs=lp),
                                      TrainerConfig())


def test_the_kernel_puts_mass_on_the_negatives_neighbours_and_stays_normalised(tmp_path):
    theta = prior()
    builder = OrdinalKernelFailureModel(OrdinalKernelOptions(bandwidth=2.0, prior_share=0.1))
    phi, fit = builder.fit(theta, Samples.from_sequences([[70], [72]]), FitSettings(),
                           from_scratch=False, seed=0)
    every = Samples.from_sequences([[i] for i in range(100)])
    log_phi, log_theta = phi.log_prob(every), theta.log_prob(every)
    assert torch.logsumexp(log_phi, 0).item() == pytest.approx(0.0, abs=1e-5)
    ratio = (log_phi - log_theta).exp()
    assert ratio[73] > 10 and ratio[75] > 2  # unseen neighbours look like the failures
    assert ratio[50] < 1 and ratio[20] < 1  # the rest keeps (less than) the prior's shape
    assert fit.steps == 0 and fit.extra["negatives"] == 2
    # the parent is untouched; a saved phi loads as a categorical of the same shape
    assert torch.allclose(theta.log_prob(every), log_theta)
    phi.save(tmp_path / "phi.pt")
    assert torch.allclose(builder.load(theta, tmp_path / "phi.pt").log_prob(every), log_phi)


def test_the_kernel_refuses_a_generator_without_a_categorical_table():
    class NotCategorical:
        module = None

    builder = OrdinalKernelFailureModel()
    with pytest.raises(ConfigError, match="categorical"):
        builder.fit(NotCategorical(), Samples.from_sequences([[1]]), FitSettings(),
                    from_scratch=False, seed=0)


def _run(tmp_path, name, *sets):
    args = ["run", "--task", "toy-1d", "--budget", "100", "--seed", "0", "-q",
            "--out", str(tmp_path / name)]
    for s in [*TAIL, "trainer.num_threads=1", *sets]:
        args += ["--set", s]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return json.loads((tmp_path / name / "summary.json").read_text())


def test_on_the_toy_tail_the_ordinal_kernel_finds_what_the_finetune_model_cannot(tmp_path):
    plain = _run(tmp_path, "finetune")
    kernel = _run(tmp_path, "kernel", "banel.failure_model.name=ordinal-kernel",
                  "banel.failure_model.options.bandwidth=2")
    assert plain["discovery"]["distinct_successes"] == 0
    assert kernel["discovery"]["distinct_successes"] >= 3
    assert kernel["discovery"]["nre_to_first_success"] <= 100
    config = yaml.safe_load((tmp_path / "kernel" / "config.yaml").read_text())
    assert config["banel"]["failure_model"]["name"] == "ordinal-kernel"


def test_a_kernel_with_a_reach_leaves_bins_beyond_it_at_the_prior_share():
    theta = prior()
    builder = OrdinalKernelFailureModel(OrdinalKernelOptions(bandwidth=2.0, reach=1.0,
                                                             prior_share=0.1))
    phi, _ = builder.fit(theta, Samples.from_sequences([[72]]), FitSettings(),
                         from_scratch=False, seed=0)
    every = Samples.from_sequences([[i] for i in range(100)])
    ratio = (phi.log_prob(every) - theta.log_prob(every)).exp()
    assert ratio[75].item() == pytest.approx(0.1, rel=1e-4)  # 1.5 bandwidths away: cut off
    assert ratio[74] > 2 and ratio[70] > 2  # within reach
