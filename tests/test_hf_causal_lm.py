"""hf-causal-lm: loading from a local directory, sampling, exact scoring, fitting, copies, errors."""

import math

import pytest
import torch
from banel_plugins.hf_causal_lm import HFCausalLM, HFCausalLMOptions
from banel_plugins.hf_loading import prompt_ids
from click.testing import CliRunner
from hf_fixtures import *

from banel_framework.cli import main
from banel_framework.config import FitSettings, TrainerConfig
from banel_framework.errors import ConfigError
from banel_framework.samples import Samples

PROMPT = "Question: Tom has 3 apples and buys 5 more. How many apples does he have? Answer:"


def build(model_dir, trainer=None, **opts):
    opts = {"prompt": PROMPT, "max_new_tokens": 12, **opts}
    return HFCausalLM.build(HFCausalLMOptions(model=str(model_dir), **opts), trainer or TrainerConfig())


def direct_log_prob(gen, seq):
    """log p(completion | prompt) computed token by token from the raw model's logits."""
    prompt = gen.module.prompt.tolist()
    ids = torch.tensor([prompt + seq])
    with torch.no_grad():
        logp = torch.log_softmax(gen.module.model(input_ids=ids).logits[0].double(), -1)
    return sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(seq))


def test_sampled_log_probs_equal_rescoring_and_the_raw_model(tiny_lm):
    gen = build(tiny_lm, sample_batch_size=5)  # several chunks
    eos = set(gen.module.eos.tolist())
    for temperature in (1.0, 0.7):
        s = gen.sample(13, seed=3, temperature=temperature)
        assert len(s) == 13 and int(s.lengths.max()) <= 12
        for seq in s.sequences():
            assert not eos & set(seq[:-1])  # EOS only ever ends a completion
            assert len(seq) == 12 or seq[-1] in eos
        again = gen.log_prob(s)
        assert torch.allclose(again, s.log_prob, atol=1e-4)
        for seq, lp in zip(s.sequences()[:4], again[:4].tolist()):
            assert lp == pytest.approx(direct_log_prob(gen, seq), abs=1e-4)
    assert torch.equal(gen.sample(6, seed=9).tokens, gen.sample(6, seed=9).tokens)
    assert not torch.equal(gen.sample(6, seed=9).tokens, gen.sample(6, seed=10).tokens)


def test_completion_probabilities_sum_to_one(tiny_lm):
    """One token: the V completions sum to 1. Two tokens: [a, *] sums to p([a]) of one token."""
    one = build(tiny_lm, max_new_tokens=1, score_batch_size=512)
    two = build(tiny_lm, max_new_tokens=2, score_batch_size=512)
    vocab = one.module.model.config.vocab_size
    singles = Samples.from_sequences([[t] for t in range(vocab)])
    lp1 = one.log_prob(singles)
    assert float(torch.logsumexp(lp1, 0)) == pytest.approx(0.0, abs=1e-4)
    eos = one.module.eos.tolist()
    for a in [t for t in (5, 77, 301) if t not in eos]:
        pairs = Samples.from_sequences([[a, b] for b in range(vocab)])
        assert float(torch.logsumexp(two.log_prob(pairs), 0)) == pytest.approx(float(lp1[a]), abs=1e-4)


def test_the_prompt_conditions_the_completion(tiny_lm):
    a, b = build(tiny_lm), build(tiny_lm, prompt="Lena has 5 boxes of crayons.")
    s = a.sample(4, seed=0)
    assert not torch.allclose(a.log_prob(s), b.log_prob(s))


def test_temperature_changes_sampling_not_the_reported_log_probs(tiny_lm):
    gen = build(tiny_lm)
    hot, cold = gen.sample(32, seed=1), gen.sample(32, seed=1, temperature=0.05)
    assert torch.allclose(gen.log_prob(cold), cold.log_prob, atol=1e-4)  # log p at temperature 1
    assert float(cold.log_prob.mean()) > float(hot.log_prob.mean()) + 2


def test_fit_clone_fresh_save_load(tiny_lm, tmp_path):
    gen = build(tiny_lm)
    eos = int(gen.module.eos[0])
    short = Samples.from_sequences([[gen.tokenizer.encode(" 8")[0], eos]] * 8)
    before = gen.log_prob(short)
    twin = gen.clone()
    fit = twin.fit(short, FitSettings(epochs=20, lr=0.05, batch_size=4), seed=0)
    assert fit.steps == 40 and math.isfinite(fit.final_loss)
    assert twin.module._trainer is None  # no Trainer, optimizer state or gradients kept
    assert all(p.grad is None for p in twin.module.parameters())
    assert torch.equal(gen.log_prob(short), before)  # the clone is independent
    assert float(twin.log_prob(short).mean()) > float(before.mean()) + 5
    s = twin.sample(16, seed=0)
    assert (s.lengths < 12).float().mean() > 0.5  # it learned to stop early
    down = gen.clone()
    down.fit(short, FitSettings(epochs=3, lr=0.01, batch_size=4), seed=0, weights=-torch.ones(8))
    assert float(down.log_prob(short).mean()) < float(before.mean())
    twin.save(tmp_path / "w.pt")
    back = gen.fresh()
    assert not torch.allclose(back.log_prob(short), twin.log_prob(short))
    back.load(tmp_path / "w.pt")
    assert torch.equal(back.log_prob(short), twin.log_prob(short))
    assert HFCausalLM.save_with_run is False


def test_chat_template(tiny_lm):
    gen = build(tiny_lm, chat=True)
    text = gen.tokenizer.decode(gen.module.prompt.tolist())
    assert text.startswith("<|user|> Question:") and text.endswith("<|assistant|>")
    gen.tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="has no chat template"):
        prompt_ids(gen.tokenizer, PROMPT, True, "tiny")


def test_bf16_weights_and_mixed_precision_run_on_cpu(tiny_lm):
    gen = build(tiny_lm, TrainerConfig(accelerator="cpu", precision="bf16-mixed"), dtype="bfloat16")
    assert gen.weight_dtype == torch.bfloat16
    s = gen.sample(8, seed=0)
    assert torch.equal(gen.log_prob(s), s.log_prob)  # rescored: identical by construction
    fit = gen.clone().fit(s, FitSettings(epochs=1, lr=1e-3, batch_size=4), seed=0)
    assert fit.steps == 2 and math.isfinite(fit.final_loss)


def test_bad_settings_are_one_line_config_errors(tiny_lm, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="trainer.devices: hf-causal-lm fits on one device"):
        build(tiny_lm, TrainerConfig(devices=2))
    with pytest.raises(ConfigError, match="no such directory"):
        build(tmp_path / "missing" / "model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ConfigError, match="cannot load 'banel-test/no-such-model' offline"):
        build("banel-test/no-such-model")
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--task", "math-qa", "--out", str(out), "-q",
                                    "--set", "generator.options.model=banel-test/no-such-model"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "offline" in lines[0] and not out.exists()
