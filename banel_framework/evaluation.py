"""Off-budget success rates with Clopper-Pearson intervals, exact where the task allows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from scipy.stats import binomtest

from .config import EvalConfig
from .interfaces import Codec, RewardOracle, Task
from .posterior import Posterior
from .samples import Samples


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact binomial interval for k successes in n trials."""
    if n <= 0:
        return (0.0, 1.0)
    ci = binomtest(k, n).proportion_ci(confidence, method="exact")
    return (float(ci.low), float(ci.high))


def ratio_interval(k1: int, n1: int, k0: int, n0: int,
                   confidence: float = 0.95) -> tuple[float, float] | None:
    """Interval of (k1/n1) / (k0/n0) from two binomial samples (Katz log method, a half
    success added to an empty count); None when either sample is empty."""
    if n1 <= 0 or n0 <= 0:
        return None
    from scipy.stats import norm

    a, b = (k1 or 0.5), (k0 or 0.5)
    log_r = math.log((a / n1) / (b / n0))
    se = math.sqrt(max(0.0, 1 / a - 1 / n1 + 1 / b - 1 / n0))
    z = float(norm.ppf(0.5 + confidence / 2))
    return (math.exp(log_r - z * se) if k1 else 0.0, math.exp(log_r + z * se))


@dataclass
class Rate:
    """A success rate: exact, or k of n samples with an interval."""

    rate: float
    n: int
    ci: tuple[float, float]
    exact: bool
    k: int | None = None
    acceptance: float | None = None
    novel_n: int | None = None  # samples not already evaluated in the ledger
    novel_k: int | None = None  # successes among them
    distinct_k: int | None = None  # distinct successful samples
    novel_distinct_k: int | None = None  # distinct successful samples not in the ledger

    @property
    def novel_rate(self) -> float | None:
        """The success rate among samples the ledger has not seen (new solutions per sample)."""
        if self.novel_n is None or self.novel_k is None:
            return None
        return self.novel_k / self.novel_n if self.novel_n else math.nan

    def as_dict(self) -> dict[str, Any]:
        d = {"rate": self.rate, "n": self.n, "k": self.k, "ci": list(self.ci),
             "exact": self.exact, "acceptance": self.acceptance}
        if self.novel_n is not None:
            d.update(novel_n=self.novel_n, novel_k=self.novel_k, novel_rate=self.novel_rate)
        if self.distinct_k is not None:
            d.update(distinct_k=self.distinct_k, novel_distinct_k=self.novel_distinct_k)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Rate | None:
        if not d:
            return None
        return cls(d["rate"], d["n"], tuple(d["ci"]), d["exact"], d.get("k"), d.get("acceptance"),
                   d.get("novel_n"), d.get("novel_k"), d.get("distinct_k"), d.get("novel_distinct_k"))


class Evaluator:
    """Measures the success rate of a posterior without spending NREs."""

    def __init__(self, task: Task, oracle: RewardOracle | None, codec: Codec, config: EvalConfig,
                 batch_size: int = 1024):
        self.config = config
        self.codec = codec
        self.batch_size = batch_size
        self.oracle = oracle
        self.support: Samples | None = task.support() if config.exact == "auto" else None
        self._support_rewards: torch.Tensor | None = None

    @property
    def mode(self) -> str:
        """'exact', 'sampled' or 'none' (the task offers no cheap oracle)."""
        if self.oracle is None:
            return "none"
        return "exact" if self.support is not None else "sampled"

    def rewards(self, samples: Samples) -> torch.Tensor:
        """The evaluation oracle's rewards, in chunks of its batch size."""
        assert self.oracle is not None
        out: list[float] = []
        step = max(1, getattr(self.oracle, "batch_size", 4096) or 4096)
        for i in range(0, len(samples), step):
            part = samples.select(list(range(i, min(len(samples), i + step))))
            out.extend(float(r) for r in self.oracle(part, self.codec.decode_batch(part)))
        return torch.tensor(out, dtype=torch.float64)

    def evaluate(self, posterior: Posterior, *, seed: int, n: int | None = None,
                 known: set[str] | None = None) -> Rate | None:
        """The success rate of `posterior`, exact or from `n` fresh samples; with `known`
        (the ledger's keys), also the rate among samples not in it."""
        if self.mode == "none":
            return None
        if self.mode == "exact" and _scores_at(posterior, self.support):
            assert self.support is not None
            if self._support_rewards is None:
                self._support_rewards = (self.rewards(self.support) > 0).double()
            probs = posterior.probabilities(self.support)
            acceptance = posterior.acceptance(self.support)
            if float(probs.sum()) == 0:
                return Rate(math.nan, 0, (math.nan, math.nan), True, None, acceptance)
            rate = float((probs * self._support_rewards).sum())
            return Rate(rate, len(self.support), (rate, rate), True, None, acceptance)
        n = self.config.samples if n is None else n
        if n <= 0:
            return None
        draw = posterior.draw(n, seed=seed, batch_size=self.batch_size,
                              max_draws=self.config.max_draws)
        got = len(draw.samples)
        if got == 0:
            return Rate(math.nan, 0, (math.nan, math.nan), False, 0, draw.acceptance)
        ok = self.rewards(draw.samples) > 0
        k = int(ok.sum())
        novel_n = novel_k = distinct = novel_distinct = None
        if known is not None:
            keys = draw.samples.keys()
            new = torch.tensor([key not in known for key in keys], dtype=torch.bool)
            novel_n, novel_k = int(new.sum()), int((ok & new).sum())
            hits = {key for key, hit in zip(keys, ok.tolist()) if hit}
            distinct, novel_distinct = len(hits), len(hits - known)
        return Rate(k / got, got, clopper_pearson(k, got, self.config.confidence), False, k,
                    draw.acceptance, novel_n, novel_k, distinct, novel_distinct)


def _scores_at(posterior: Posterior, support: Samples | None) -> bool:
    """True when the proposal gives exact log-probs at the posterior's temperature."""
    if support is None or posterior.temperature == 1.0:
        return support is not None
    try:
        posterior.proposal.log_prob_at(support.select([0]), posterior.temperature)
    except NotImplementedError:
        return False
    return True
