"""A decoder-only transformer over token sequences, with a key/value cache for batched sampling."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Options

from .lightning_generator import LightningGenerator, SequenceModule


class Block(nn.Module):
    """Pre-norm attention and MLP."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        shape = (b, t, self.n_heads, d // self.n_heads)
        return (q.view(shape).transpose(1, 2), k.view(shape).transpose(1, 2),
                v.view(shape).transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(x)
        p = self.drop.p if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(x.shape)))
        return x + self.drop(self.mlp(self.ln2(x)))

    def step(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor], t: int) -> torch.Tensor:
        """One position at index t, reading and writing the cache in place."""
        q, k, v = self._heads(x)
        kc, vc = cache
        kc[:, :, t] = k[:, :, 0]
        vc[:, :, t] = v[:, :, 0]
        a = F.scaled_dot_product_attention(q, kc[:, :, : t + 1], vc[:, :, : t + 1])
        x = x + self.proj(a.transpose(1, 2).reshape(x.shape))
        return x + self.mlp(self.ln2(x))


class TransformerModule(SequenceModule):
    """p(x) = prod_t p(x_t | BOS, x_<t): a GPT-style decoder; BOS is an extra input embedding."""

    def __init__(self, vocab_size: int, eos_id: int, max_len: int = 32, d_model: int = 128,
                 n_layers: int = 4, n_heads: int = 4, d_ff: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.vocab_size, self.eos_id, self.max_len = vocab_size, eos_id, max_len
        self.bos_id = vocab_size  # input-only token
        self.tok = nn.Embedding(vocab_size + 1, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff or 4 * d_model, dropout)
                                    for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.drop = nn.Dropout(dropout)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Next-token logits at every position of `inputs` (which start with BOS)."""
        t = inputs.shape[1]
        x = self.drop(self.tok(inputs) + self.pos(torch.arange(t, device=inputs.device)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))

    def token_log_probs(self, tokens: torch.Tensor, lengths: torch.Tensor,
                        temperature: float = 1.0) -> torch.Tensor:
        """log p(x_t | x_<t) at each position, zero beyond each sequence's length; [B, T]."""
        b, t = tokens.shape
        bos = torch.full((b, 1), self.bos_id, dtype=tokens.dtype, device=tokens.device)
        inputs = torch.cat([bos, tokens[:, :-1]], 1) if t else bos[:, :0]
        logp = torch.log_softmax(self.logits(inputs).float() / temperature, -1)
        lp = logp.gather(2, tokens.clamp_max(self.vocab_size - 1).unsqueeze(2)).squeeze(2)
        mask = torch.arange(t, device=tokens.device)[None, :] < lengths[:, None]
        return lp * mask

    def sequence_log_prob(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.token_log_probs(tokens, lengths).sum(1)

    def tempered_log_prob(self, tokens: torch.Tensor, lengths: torch.Tensor,
                          temperature: float) -> torch.Tensor:
        return self.token_log_probs(tokens, lengths, temperature).sum(1)

    def _new_cache(self, n: int, limit: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        d, heads = self.hparams.d_model, self.hparams.n_heads
        return [(torch.zeros(n, heads, limit, d // heads, device=self.device),
                 torch.zeros(n, heads, limit, d // heads, device=self.device))
                for _ in self.blocks]

    def _step(self, x: torch.Tensor, cache: list, t: int) -> torch.Tensor:
        """Next-token logits after input tokens x at position t, extending the cache."""
        h = self.tok(x)[:, None, :] + self.pos.weight[t]
        for block, c in zip(self.blocks, cache):
            h = block.step(h, c, t)
        return self.head(self.ln(h[:, 0])).float()

    @torch.no_grad()
    def decode(self, n: int, generator: torch.Generator | None, temperature: float = 1.0, *,
               prefix: torch.Tensor | None = None, prefix_lengths: torch.Tensor | None = None,
               greedy: bool = False, max_len: int | None = None,
               guides: list[tuple[TransformerModule, float]] | None = None,
               self_weight: float = 1.0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Generate with the cache: rows follow their prefix, then sample (or argmax) until EOS.

        Returns (tokens [n, T] including the prefix, lengths, log p of the generated part at
        temperature 1). Finished rows are dropped from the batch (and the cache) in bulk.
        With `guides` [(module, w), ...] each step samples from log_softmax of
        self_weight * log p_self + sum_i w_i log p_i (the modules share the vocabulary), and
        the log-probs returned are under that guided distribution.
        """
        dev = self.device
        limit = min(max_len or self.max_len, self.max_len)
        guides = guides or []
        caches = self._new_cache(n, limit)
        guide_caches = [g._new_cache(n, limit) for g, _ in guides]
        out = torch.zeros(n, limit, dtype=torch.long, device=dev)
        lengths = torch.full((n,), limit, dtype=torch.long, device=dev)
        lp = torch.zeros(n, device=dev)
        if prefix is not None:
            prefix, plen = prefix.to(dev), prefix_lengths.to(dev)
        rows = torch.arange(n, device=dev)  # output row of each cache row
        live = torch.ones(n, dtype=torch.bool, device=dev)  # cache rows still generating
        x = torch.full((n,), self.bos_id, dtype=torch.long, device=dev)
        for t in range(limit):
            logits = self._step(x, caches, t)
            if guides:
                mix = self_weight * torch.log_softmax(logits, -1)
                for (g, w), gc in zip(guides, guide_caches):
                    mix = mix + w * torch.log_softmax(g._step(x, gc, t), -1)
                logits = mix
            logp = torch.log_softmax(logits, -1)
            if greedy:
                nxt = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, -1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            forced = torch.zeros_like(live)
            if prefix is not None:
                forced = t < plen[rows]
                nxt = torch.where(forced, prefix[rows, min(t, prefix.shape[1] - 1)], nxt)
            gen_lp = torch.where(forced, 0.0, logp.gather(1, nxt[:, None]).squeeze(1))
            out[rows[live], t] = nxt[live]
            lp[rows[live]] += gen_lp[live]
            ended = live & (nxt == self.eos_id) & ~forced
            if bool(ended.any()):
                lengths[rows[ended]] = t + 1
                live = live & ~ended
                alive = int(live.sum())
                if alive == 0:
                    break
                if alive < 0.75 * len(live):  # compact the batch and its cache
                    keep = live.nonzero().squeeze(1)
                    caches = [(k[keep], v[keep]) for k, v in caches]
                    guide_caches = [[(k[keep], v[keep]) for k, v in gc] for gc in guide_caches]
                    rows, nxt, live = rows[keep], nxt[keep], live[keep]
            x = nxt
        width = int(lengths.max()) if n else 0
        return out[:, :width], lengths, lp

    def guided_token_log_probs(self, tokens: torch.Tensor, lengths: torch.Tensor,
                               guides: list[tuple[TransformerModule, float]],
                               temperature: float = 1.0, self_weight: float = 1.0
                               ) -> torch.Tensor:
        """token_log_probs under the guided distribution `decode(guides=...)` samples."""
        b, t = tokens.shape
        bos = torch.full((b, 1), self.bos_id, dtype=tokens.dtype, device=tokens.device)
        inputs = torch.cat([bos, tokens[:, :-1]], 1) if t else bos[:, :0]
        mix = self_weight * torch.log_softmax(self.logits(inputs).float(), -1)
        for g, w in guides:
            mix = mix + w * torch.log_softmax(g.logits(inputs).float(), -1)
        logp = torch.log_softmax(mix / temperature, -1)
        lp = logp.gather(2, tokens.clamp_max(self.vocab_size - 1).unsqueeze(2)).squeeze(2)
        mask = torch.arange(t, device=tokens.device)[None, :] < lengths[:, None]
        return lp * mask

    def sample_sequences(self, n: int, generator: torch.Generator, temperature: float):
        return self.decode(n, generator, temperature)

    def complete_sequences(self, prefix: torch.Tensor, prefix_lengths: torch.Tensor,
                           generator: torch.Generator, temperature: float):
        tokens, lengths, _ = self.decode(len(prefix), generator, temperature, prefix=prefix,
                                         prefix_lengths=prefix_lengths)
        return tokens, lengths


class TransformerOptions(Options):
    """Options of the transformer generator (architecture and sizes)."""

    vocab_size: int = Field(..., ge=2, description="Output vocabulary size (EOS included).")
    eos_id: int = Field(..., ge=0, description="Token id that ends a sequence.")
    max_len: int = Field(32, ge=1, description="Longest sequence, EOS included.")
    d_model: int = Field(128, ge=8, description="Width of the residual stream.")
    n_layers: int = Field(4, ge=1, description="Transformer blocks.")
    n_heads: int = Field(4, ge=1, description="Attention heads (must divide d_model).")
    d_ff: int | None = Field(None, ge=1, description="MLP width (None: 4 * d_model).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout during fine-tuning.")

    @model_validator(mode="after")
    def _check(self) -> TransformerOptions:
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if self.eos_id >= self.vocab_size:
            raise ValueError("eos_id must be below vocab_size")
        return self


class TransformerGenerator(LightningGenerator):
    """A small GPT-style generator trained with Lightning; exact log-likelihoods, cached sampling."""

    module_cls = TransformerModule
    Options = TransformerOptions
    score_batch_size = 2048
    completes_prefixes = True

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "family": "transformer"}


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@hookimpl
def register_generators(register):
    register("transformer", TransformerGenerator)


__all__ = ["TransformerGenerator", "TransformerModule", "TransformerOptions", "count_parameters"]
