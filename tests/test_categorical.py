import torch
from banel_plugins.categorical import CategoricalGenerator, CategoricalOptions

from banel_framework.config import FitSettings, TrainerConfig


def make(k=8, init=None):
    return CategoricalGenerator.build(CategoricalOptions(vocab_size=k, init_log_probs=init),
                                      TrainerConfig(accelerator="cpu"))


def test_sampling_log_probs_equal_rescoring():
    g = make(init=torch.log_softmax(torch.randn(8), 0).tolist())
    s = g.sample(500, seed=0, temperature=0.7)
    assert torch.allclose(s.log_prob, g.log_prob(s), atol=1e-6)


def test_fit_raises_likelihood_of_the_data_and_is_seeded():
    data = make().sample(1, seed=0)
    data = type(data).from_sequences([[3]] * 16)
    a, b = make(), make()
    before = float(a.log_prob(data)[0])
    a.fit(data, FitSettings(epochs=5, lr=0.1, batch_size=4), seed=1)
    b.fit(data, FitSettings(epochs=5, lr=0.1, batch_size=4), seed=1)
    assert float(a.log_prob(data)[0]) > before + 0.5
    assert torch.equal(a.module.logits, b.module.logits)


def test_clone_is_independent_and_fresh_forgets_weights(tmp_path):
    g = make(init=torch.log_softmax(torch.arange(8.0), 0).tolist())
    c = g.clone()
    c.module.logits.data.zero_()
    assert not torch.equal(g.module.logits, c.module.logits)
    f = g.fresh()
    assert torch.allclose(f.module.logits, torch.zeros(8))
    g.save(tmp_path / "w.pt")
    f.load(tmp_path / "w.pt")
    assert torch.equal(f.module.logits, g.module.logits)
