"""A posterior's off-budget success rate from proposals: P_q(success, accepted) / P_q(accepted).

Rejection sampling scores every proposal against every region before it can count a success,
and a posterior that accepts 1e-4 of its proposals needs millions of them. Here the proposal q
is sampled and rewarded by the cheap evaluation oracle, and only the successes plus a separate
batch of `m` proposals go through the regions. Same proposals, same successes, same
expectation, a fraction of the scoring. Interval: the two Clopper-Pearson intervals at
(1 + confidence) / 2 each, divided (Bonferroni, so at least `confidence` jointly).

When every round shares one proposal (no distillation), `rate_curve` scores each sample once
against every region, records the first round that rejects it, and reads off the rate after
every round from the same samples. Each row also gives the rate of the posterior that excludes
the failures the ledger already knows (`excluding_known`): p(x | x not in R~, x not evaluated).
Known failures never succeed, so excluding them only removes mass from the acceptance.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from banel_framework.errors import BanelError
from banel_framework.evaluation import clopper_pearson
from banel_framework.interfaces import Generator
from banel_framework.posterior import Posterior, RejectionRegion
from banel_framework.samples import Samples
from banel_framework.seeding import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    from banel_framework.run import Run

#: The round recorded for a sample that no region rejects.
NEVER = 1 << 30

#: Samples -> a boolean tensor, True where the sample succeeds.
Successes = Callable[[Samples], torch.Tensor]


def oracle_successes(run: Run) -> Successes:
    """Success (reward > 0) under the run's evaluation oracle."""
    if run.evaluator.mode == "none":
        raise BanelError(f"task {run.config.task!r} has no cheap evaluation oracle")
    return lambda samples: run.evaluator.rewards(samples) > 0


def proposal_draws(q: Generator, successes: Successes, n: int, m: int, seed: int,
                   temperature: float = 1.0, batch: int = 4096) -> tuple[Samples, Samples]:
    """The successes among n fresh proposals, and m further proposals for the acceptance."""
    hits: list[Samples] = []
    for i in range(0, n, batch):
        s = q.sample(min(batch, n - i), seed=derive_seed(seed, "n", i), temperature=temperature)
        ok = successes(s).nonzero().squeeze(1)
        if ok.numel():
            hits.append(s.select(ok))
    rest = [q.sample(min(batch, m - i), seed=derive_seed(seed, "m", i), temperature=temperature)
            for i in range(0, m, batch)]
    return Samples.cat(hits), Samples.cat(rest)


def cached_draws(q: Generator, successes: Successes, n: int, m: int, seed: int,
                 temperature: float, path: str | Path, label: str = "") -> tuple[Samples, Samples]:
    """`proposal_draws`, saved to `path` once and read back for any run with the same proposal.

    Rewarding millions of proposals dominates a curve's cost; runs that share a prior (several
    seeds, several settings) can share its draws, which also pairs their curves. The file holds
    keys and log-likelihoods; `label` names what decides success (rate_curve: the task and its
    options), and a fingerprint (the proposal's log-likelihood of a few saved samples) refuses
    a file made with another proposal.
    """
    path = Path(path)
    spec = {"n": n, "m": m, "seed": seed, "temperature": temperature, "label": label}
    if path.exists():
        data = torch.load(path, weights_only=True)
        if data["spec"] != spec:
            raise BanelError(f"{path} holds draws for {data['spec']}, not {spec}")
        succ, rest = Samples.from_keys(data["succ"]), Samples.from_keys(data["rest"])
        succ.log_prob, rest.log_prob = data.get("succ_log_prob"), data.get("rest_log_prob")
        probe = rest.select(list(range(min(16, len(rest)))))
        if len(probe) and not torch.allclose(q.log_prob(probe).detach().cpu().double(),
                                             data["fingerprint"], atol=1e-3, rtol=0):
            raise BanelError(f"{path} was drawn from another proposal (fingerprint differs)")
        return succ, rest
    succ, rest = proposal_draws(q, successes, n, m, seed, temperature)
    probe = rest.select(list(range(min(16, len(rest)))))
    fingerprint = (q.log_prob(probe).detach().cpu().double() if len(probe)
                   else torch.zeros(0, dtype=torch.float64))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"spec": spec, "succ": succ.keys(), "rest": rest.keys(),
                "succ_log_prob": succ.log_prob, "rest_log_prob": rest.log_prob,
                "fingerprint": fingerprint}, path)
    return succ, rest


def first_rejection(regions: list[RejectionRegion], post: Posterior, samples: Samples
                    ) -> torch.Tensor:
    """For each sample, the first round whose region rejects it (NEVER when none does)."""
    out = torch.full((len(samples),), NEVER, dtype=torch.long)
    if samples.log_prob is None and post.proposal is post.prior and len(samples):
        # score the proposal once here, not once per region
        samples = Samples(samples.tokens, samples.lengths,
                          post.prior.log_prob(samples).detach().cpu().float())
    for region in sorted(regions, key=lambda r: r.round):
        alive = (out == NEVER).nonzero().squeeze(1)
        if not alive.numel():
            break
        one = Posterior(post.prior, post.proposal, post.scorer, [region], post.temperature)
        rej = one.reject_mask(samples.select(alive))[0]
        out[alive[rej]] = region.round
    return out


def estimate(k_joint: int, n: int, k_acc: int, m: int, confidence: float = 0.95) -> dict[str, Any]:
    """Rate = (k_joint / n) / (k_acc / m) with a Bonferroni-joined Clopper-Pearson interval."""
    each = (1 + confidence) / 2
    j_lo, j_hi = clopper_pearson(k_joint, n, each)
    a_lo, a_hi = clopper_pearson(k_acc, m, each)
    acc = k_acc / m if m else math.nan
    rate = (k_joint / n) / acc if acc > 0 else math.nan
    return {"rate": rate, "ci": [j_lo / a_hi if a_hi > 0 else math.nan,
                                 j_hi / a_lo if a_lo > 0 else math.inf],
            "n": n, "m": m, "accepted_successes": k_joint, "accepted": k_acc,
            "acceptance": acc, "estimator": "ratio", "confidence": confidence}


def ratio_rate(post: Posterior, successes: Successes, *, n: int, m: int, seed: int,
               confidence: float = 0.95) -> dict[str, Any]:
    """Success rate of one posterior from n rewarded proposals and m region-checked ones."""
    start = time.perf_counter()
    succ, rest = proposal_draws(post.proposal, successes, n, m, seed, post.temperature)
    k_joint = len(succ) - int(post.reject_mask(succ)[0].sum()) if len(succ) else 0
    k_acc = len(rest) - int(post.reject_mask(rest)[0].sum()) if len(rest) else 0
    out = estimate(k_joint, n, k_acc, m, confidence)
    return {**out, "proposal_successes": len(succ), "seconds": time.perf_counter() - start}


def rate_curve(run: Run, *, n: int, m: int, seed: int, successes: Successes | None = None,
               confidence: float = 0.95, draws: str | Path | None = None
               ) -> list[dict[str, Any]]:
    """The success rate after every finished round, from one set of proposals (no distillation).

    With `draws`, the rewarded proposals are read from (or saved to) that file: see cached_draws.
    """
    from banel_plugins.banel import replay

    states = list(replay(run))
    if not states:
        return []
    last = states[-1].posterior
    if any(s.posterior.proposal is not run.prior for s in states):
        raise BanelError("rate_curve needs one shared proposal: the run distilled; use ratio_rate")
    successes = successes or oracle_successes(run)
    start = time.perf_counter()
    if draws is None:
        succ, rest = proposal_draws(run.prior, successes, n, m, seed, last.temperature)
    else:
        label = json.dumps([run.config.task, run.config.task_options], sort_keys=True, default=str)
        succ, rest = cached_draws(run.prior, successes, n, m, seed, last.temperature, draws, label)
    first_s = first_rejection(last.regions, last, succ)
    first_r = first_rejection(last.regions, last, rest)
    known = {e.key: e.round for e in run.ledger.evaluations(status="done") if (e.reward or 0) <= 0}
    known_r = torch.tensor([known.get(k, NEVER) for k in rest.keys()], dtype=torch.long)  # noqa: SIM118
    curve = []
    for r in [0] + [st.round for st in states]:
        k_joint = int((first_s > r).sum())
        alive = first_r > r
        curve.append({"round": r, **estimate(k_joint, n, int(alive.sum()), m, confidence),
                      "excluding_known": estimate(k_joint, n, int((alive & (known_r > r)).sum()),
                                                  m, confidence)})
    for row in curve:
        row["seconds"] = time.perf_counter() - start
        row["proposal_successes"] = len(succ)
    return curve
