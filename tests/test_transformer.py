import torch
from banel_plugins.transformer import TransformerGenerator, TransformerOptions

from banel_framework.config import FitSettings, TrainerConfig
from banel_framework.samples import Samples


def make(**kw):
    opts = TransformerOptions(vocab_size=6, eos_id=5, max_len=8, d_model=32, n_layers=2,
                              n_heads=2, **kw)
    return TransformerGenerator.build(opts, TrainerConfig(accelerator="cpu"))


def test_sampling_log_probs_equal_rescoring_at_any_temperature():
    g = make()
    for temp in (1.0, 0.6):
        s = g.sample(300, seed=1, temperature=temp)
        assert (s.lengths >= 1).all() and (s.lengths <= 8).all()
        ended = s.lengths < 8
        assert (s.tokens[ended, s.lengths[ended] - 1] == 5).all()  # EOS closes each sequence
        assert torch.allclose(s.log_prob, g.log_prob(s), atol=1e-4)


def test_prefix_decoding_follows_the_prefix_and_scores_only_the_rest():
    g = make()
    m = g.module
    prefix = torch.tensor([[1, 2, 3], [4, 0, 0]])
    toks, lens, lp = m.decode(2, torch.Generator().manual_seed(0), prefix=prefix,
                              prefix_lengths=torch.tensor([3, 1]), greedy=True)
    assert toks[0, :3].tolist() == [1, 2, 3] and toks[1, 0] == 4
    full = m.token_log_probs(toks, lens)
    assert torch.allclose(lp, torch.stack([full[0, 3:].sum(), full[1, 1:].sum()]), atol=1e-5)


def test_complete_continues_each_prefix_with_full_sequence_log_probs():
    g = make()
    prefixes = Samples(torch.tensor([[1, 2, 3, 0], [4, 4, 0, 0]] * 50), torch.tensor([3, 1] * 50))
    out = g.complete(prefixes, seed=3)
    assert len(out) == 100
    assert (out.tokens[::2, :3] == torch.tensor([1, 2, 3])).all() and (out.tokens[1::2, 0] == 4).all()
    assert (out.lengths[::2] > 3).all() and (out.lengths[1::2] > 1).all()
    assert len(set(out.keys()[1::2])) > 5  # sampled continuations, not one greedy string
    assert torch.allclose(out.log_prob, g.log_prob(out), atol=1e-5)
    assert out.keys() == g.complete(prefixes, seed=3).keys()  # seeded


def test_fit_learns_a_sequence_and_checkpoint_is_weights_only(tmp_path):
    g = make()
    data = Samples.from_sequences([[1, 2, 3, 5]] * 64)
    before = float(g.log_prob(data)[0])
    res = g.fit(data, FitSettings(epochs=20, lr=3e-3, batch_size=16), seed=0)
    after = float(g.log_prob(data)[0])
    assert after > before + 2 and res.steps == 80
    g.save(tmp_path / "w.pt")
    f = g.fresh()
    assert float(f.log_prob(data)[0]) < after - 1
    f.load(tmp_path / "w.pt")
    assert torch.allclose(f.log_prob(data), g.log_prob(data))
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_negative_weights_push_likelihood_down():
    g = make()
    data = Samples.from_sequences([[1, 2, 5]] * 32)
    before = float(g.log_prob(data)[0])
    g.fit(data, FitSettings(epochs=3, lr=3e-3, batch_size=32), seed=0, weights=-torch.ones(32))
    assert float(g.log_prob(data)[0]) < before


def test_bad_architecture_is_a_clear_error():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must divide"):
        TransformerOptions(vocab_size=6, eos_id=5, d_model=30, n_heads=4)


def test_a_fit_keeps_no_trainer_gradients_or_optimizer_state():
    g = make()
    g.fit(Samples.from_sequences([[1, 2, 5]] * 8), FitSettings(epochs=1, lr=1e-3), seed=0)
    assert g.module._trainer is None
    assert all(p.grad is None for p in g.module.parameters())
