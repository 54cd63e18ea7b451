"""Generic features of token sequences: hashed (position, token) and bigram indicators, and length."""

from __future__ import annotations

import torch

from banel_framework.samples import Samples

# Odd 31-bit multipliers of a multiplicative hash; any fixed choice works.
_P_POS, _P_TOK, _P_PREV, _P_NEXT, _SALT = 1_000_003, 2_654_435_761, 97_531, 8_191, 0x5BD1E995
_MASK = (1 << 31) - 1


def hashed_features(samples: Samples, dim: int) -> torch.Tensor:
    """A [B, dim] float bag of hashed (position, token) and (token, next token) indicators plus length."""
    toks = samples.tokens.long().cpu()
    lens = samples.lengths.long().cpu()
    b, t = toks.shape
    out = torch.zeros(b, dim)
    if b == 0:
        return out
    pos = torch.arange(t)[None, :].expand(b, t)
    live = pos < lens[:, None]
    uni = ((pos * _P_POS + toks * _P_TOK) & _MASK) % dim
    out.scatter_add_(1, uni, live.float())
    if t > 1:
        bi = ((toks[:, :-1] * _P_PREV + toks[:, 1:] * _P_NEXT + _SALT) & _MASK) % dim
        out.scatter_add_(1, bi, live[:, 1:].float())
    length = ((lens * _P_POS + _SALT * 3) & _MASK) % dim
    out.scatter_add_(1, length[:, None], torch.ones(b, 1))
    return out
