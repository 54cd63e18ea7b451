"""A cheaper off-budget estimate of a posterior's success rate: P_q(success, accepted) / P_q(accepted).

Rejection sampling scores every proposal against every region before it can count a success.
Here the proposal q is sampled and classified (cheap), and only the successes plus a separate
batch of `m` proposals go through the regions. Same proposals, same successes, same expectation,
a fraction of the scoring. Interval: the two Clopper-Pearson intervals at (1 + confidence) / 2
each, divided (Bonferroni, so at least `confidence` jointly).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from banel_framework.evaluation import clopper_pearson
from banel_framework.posterior import Posterior
from banel_framework.samples import Samples
from banel_framework.seeding import derive_seed

from .digits_data import DigitOracle


def ratio_rate(post: Posterior, oracle: DigitOracle, *, n: int, m: int, seed: int,
               batch: int = 4096, confidence: float = 0.95) -> dict[str, Any]:
    """Success rate of `post` from n proposals (classified) and m proposals (regions checked)."""
    start = time.perf_counter()
    hits: list[Samples] = []
    for i in range(0, n, batch):
        s = post.proposal.sample(min(batch, n - i), seed=derive_seed(seed, "n", i),
                                 temperature=post.temperature)
        ok = oracle.target_proba(s) >= oracle.threshold
        if ok.any():
            hits.append(s.select(torch.from_numpy(np.flatnonzero(ok))))
    succ = Samples.cat(hits)
    k_succ = len(succ)
    k_joint = k_succ - int(post.reject_mask(succ)[0].sum()) if k_succ else 0
    k_acc = 0
    for i in range(0, m, batch):
        s = post.proposal.sample(min(batch, m - i), seed=derive_seed(seed, "m", i),
                                 temperature=post.temperature)
        k_acc += len(s) - int(post.reject_mask(s)[0].sum())
    each = (1 + confidence) / 2
    j_lo, j_hi = clopper_pearson(k_joint, n, each)
    a_lo, a_hi = clopper_pearson(k_acc, m, each)
    acc = k_acc / m if m else math.nan
    rate = (k_joint / n) / acc if acc > 0 else math.nan
    return {"rate": rate, "ci": [j_lo / a_hi if a_hi > 0 else math.nan,
                                 j_hi / a_lo if a_lo > 0 else math.inf],
            "n": n, "m": m, "proposal_successes": k_succ, "accepted_successes": k_joint,
            "accepted": k_acc, "acceptance": acc, "seconds": time.perf_counter() - start,
            "estimator": "ratio", "confidence": confidence}
