import torch

from banel_framework.samples import Samples, key_sequence, sequence_key


def test_keys_round_trip_and_ignore_padding():
    s = Samples.from_sequences([[3, 1, 2], [5], []])
    assert s.tokens.shape == (3, 3)
    assert s.keys() == ["3,1,2", "5", ""]
    back = Samples.from_keys(s.keys())
    assert back.sequences() == [[3, 1, 2], [5], []]
    assert key_sequence(sequence_key([7, 0, 9])) == [7, 0, 9]


def test_select_trims_and_keeps_log_probs():
    s = Samples.from_sequences([[1, 2, 3], [4]])
    s.log_prob = torch.tensor([-1.0, -2.0])
    sub = s.select(torch.tensor([False, True]))
    assert sub.tokens.shape == (1, 1)
    assert sub.log_prob.tolist() == [-2.0]
    assert sub.keys() == ["4"]


def test_cat_pads_to_widest_and_drops_log_probs_when_missing():
    a = Samples.from_sequences([[1]])
    a.log_prob = torch.tensor([-0.5])
    b = Samples.from_sequences([[1, 2, 3]])
    c = Samples.cat([a, b])
    assert c.sequences() == [[1], [1, 2, 3]]
    assert c.log_prob is None
    assert len(Samples.cat([])) == 0
