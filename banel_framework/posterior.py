"""The BaNEL posterior: a proposal times the indicators of the accumulated rejection regions."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .errors import BanelError
from .interfaces import Generator, LogProbModel, PosteriorScorer
from .samples import Samples
from .seeding import derive_seed


#: The rejected_by entry of samples excluded outright (the ledger's failures, the task's check).
KNOWN = 0


@dataclass
class RejectionRegion:
    """R~_k = {x : p_phi_k(x)^kappa / p_ref(x) > f}, the failures learned in round k."""

    round: int
    failure_model: LogProbModel
    reference: LogProbModel  # the prior, a proposal, a control fit or a mixture
    #: Subtracted from log p_phi before the test (> 0 only to spare known successes).
    slack: float = 0.0
    checked: int = 0
    rejected: int = 0

    @property
    def rejection_rate(self) -> float:
        """Share of checked proposals this region rejected (smoothed)."""
        return (self.rejected + 1) / (self.checked + 2)


def guard_slack(scorer: PosteriorScorer, log_ref: torch.Tensor, log_phi: torch.Tensor,
                tol: float = 1e-4) -> float:
    """The least slack (lowering of log p_phi) at which the scorer rejects none of these samples."""
    if not bool(scorer.reject(log_ref, log_phi).any()):
        return 0.0
    lo, hi = 0.0, 1.0
    while bool(scorer.reject(log_ref, log_phi - hi).any()):
        lo, hi = hi, hi * 2
        if hi > 1e6:
            raise BanelError("the posterior scorer still rejects at a slack of 1e6: it must "
                             "reject less as log p_phi falls")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if bool(scorer.reject(log_ref, log_phi - mid).any()) else (lo, mid)
    return hi + 1e-3  # a margin for batch-dependent rounding of the log-likelihoods


def calibrated_slack(scorer: PosteriorScorer, log_ref: torch.Tensor, log_phi: torch.Tensor,
                     share: float, tol: float = 1e-4) -> float:
    """The slack at which the scorer rejects `share` of these held-out negatives (it may be
    negative: a region stricter than f)."""
    def rejected(slack: float) -> float:
        return float(scorer.reject(log_ref, log_phi - slack).double().mean())

    lo, hi = -1.0, 1.0
    while rejected(lo) < share and lo > -1e6:  # rejection falls as the slack grows
        lo *= 2
    while rejected(hi) > share and hi < 1e6:
        hi *= 2
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rejected(mid) > share else (lo, mid)
    return hi


@dataclass
class DrawResult:
    """Accepted samples and what it took to get them."""

    samples: Samples
    drawn: int = 0
    accepted: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    rejected_by: dict[int, int] = field(default_factory=dict)
    capped: bool = False

    @property
    def acceptance(self) -> float:
        """Accepted over drawn (NaN when nothing was drawn)."""
        return self.accepted / self.drawn if self.drawn else math.nan


class Posterior:
    """Samples proposal(x) * prod_k 1[x not in R~_k] by batched rejection with early exit."""

    def __init__(self, prior: Generator, proposal: Generator, scorer: PosteriorScorer | None,
                 regions: list[RejectionRegion] | None = None, temperature: float = 1.0,
                 excluded: Callable[[str], bool] | None = None):
        self.prior = prior
        self.proposal = proposal
        self.scorer = scorer
        self.regions: list[RejectionRegion] = list(regions or [])
        self.temperature = temperature
        #: Keys rejected outright (known to fail without an NRE), before any region is scored.
        self.excluded = excluded

    def with_proposal(self, proposal: Generator) -> Posterior:
        """The same regions over another proposal."""
        return Posterior(self.prior, proposal, self.scorer, self.regions, self.temperature,
                         self.excluded)

    def reject_mask(self, samples: Samples) -> tuple[torch.Tensor, dict[int, int]]:
        """True where some region rejects; regions that reject most are checked first."""
        n = len(samples)
        alive = torch.ones(n, dtype=torch.bool)
        by_region: dict[int, int] = {}
        if self.excluded is not None and n:
            known = torch.tensor([self.excluded(k) for k in samples.keys()], dtype=torch.bool)
            alive &= ~known
            by_region[KNOWN] = int(known.sum())
        if not self.regions or n == 0:
            return ~alive, by_region
        cache: dict[int, torch.Tensor] = {}
        if samples.log_prob is not None and self.proposal is self.prior:
            cache[id(self.prior)] = samples.log_prob.detach().cpu().float()
        for region in sorted(self.regions, key=lambda r: -r.rejection_rate):
            idx = alive.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            sub = samples.select(idx)
            log_ref = self._log_prob(region.reference, samples, idx, sub, cache)
            log_phi = region.failure_model.log_prob(sub).detach().cpu().float() - region.slack
            rej = self.scorer.reject(log_ref, log_phi).cpu()
            alive[idx[rej]] = False
            count = int(rej.sum())
            region.checked += idx.numel()
            region.rejected += count
            by_region[region.round] = count
        return ~alive, by_region

    @staticmethod
    def _log_prob(model: Generator, samples: Samples, idx: torch.Tensor, sub: Samples,
                  cache: dict[int, torch.Tensor]) -> torch.Tensor:
        """log p_model on the rows `idx`, computing only rows not scored before in this batch
        (a weighted mixture's components once each, shared between regions)."""
        parts = getattr(model, "components", None)
        if parts is not None:
            return model.combine([Posterior._log_prob(m, samples, idx, sub, cache)
                                  for m, _ in parts])
        full = cache.get(id(model))
        if full is None:
            full = cache[id(model)] = torch.full((len(samples),), math.nan)
        need = torch.isnan(full[idx])
        if bool(need.any()):
            rows = idx[need]
            full[rows] = model.log_prob(samples.select(rows)).detach().cpu().float()
        return full[idx]

    def draw(self, n: int, *, seed: int, batch_size: int, max_draws: int,
             exclude: Callable[[str], bool] | None = None, unique: bool = False,
             on_batch: Callable[[DrawResult], None] | None = None) -> DrawResult:
        """Draw up to `n` accepted samples (new and unique if asked) within `max_draws` proposals."""
        start = time.perf_counter()
        result = DrawResult(Samples.empty())
        kept: list[Samples] = []
        have = 0
        seen: set[str] = set()
        batch_no = 0
        while have < n and result.drawn < max_draws:
            size = min(batch_size, max_draws - result.drawn)
            batch = self.proposal.sample(size, seed=derive_seed(seed, "batch", batch_no),
                                         temperature=self.temperature)
            batch_no += 1
            result.drawn += len(batch)
            rejected, by_region = self.reject_mask(batch)
            for r, c in by_region.items():
                result.rejected_by[r] = result.rejected_by.get(r, 0) + c
            ok = (~rejected).nonzero().squeeze(1)
            result.accepted += ok.numel()
            if ok.numel():
                acc = batch.select(ok)
                if unique or exclude is not None:
                    take = []
                    for i, key in enumerate(acc.keys()):
                        if (unique and key in seen) or (exclude is not None and exclude(key)):
                            result.duplicates += 1
                            continue
                        seen.add(key)
                        take.append(i)
                    acc = acc.select(take) if len(take) < len(acc) else acc
                acc = acc.select(list(range(min(len(acc), n - have)))) if have + len(acc) > n else acc
                if len(acc):
                    kept.append(acc.to("cpu"))
                    have += len(acc)
            if on_batch is not None:
                on_batch(result)
        result.samples = Samples.cat(kept)
        result.capped = have < n
        result.seconds = time.perf_counter() - start
        return result

    def sampled_log_prob(self, support: Samples) -> torch.Tensor:
        """log q_T over the support: the proposal at the temperature it is sampled at."""
        return self.proposal.log_prob_at(support, self.temperature).detach().cpu().double()

    def probabilities(self, support: Samples) -> torch.Tensor:
        """Exact posterior probabilities over an enumerable support (sums to 1, or all zeros),
        of the distribution `draw` samples (the proposal at self.temperature)."""
        log_q = self.sampled_log_prob(support)
        rejected, _ = self.reject_mask(support)
        q = torch.softmax(log_q, 0)
        q = q * (~rejected).double()
        total = q.sum()
        return q / total if total > 0 else q

    def acceptance(self, support: Samples) -> float:
        """Exact share of the sampled proposal's mass (at self.temperature) no region rejects."""
        log_q = self.sampled_log_prob(support)
        rejected, _ = self.reject_mask(support)
        return float((torch.softmax(log_q, 0) * (~rejected).double()).sum())
