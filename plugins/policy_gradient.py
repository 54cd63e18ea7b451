"""Policy-gradient baselines: REINFORCE with a running-mean baseline, optional novelty bonus and KL.

One round is one update: draw a batch from the current policy, reward every sample (a new one costs
one NRE through the ledger; a sample already in the ledger, or repeated in the batch, is answered
from the ledger for free and stays in the batch), add beta times the normalised novelty bonus,
subtract the running-mean baseline, and call `policy.fit(batch, weights=advantages)`.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field

from banel_framework.config import FitSettings
from banel_framework.errors import ConfigError
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Generator, Options
from banel_framework.posterior import Posterior
from banel_framework.rounds import Batch, Proposal, RoundMethod
from banel_framework.run import Plan, Run
from banel_framework.samples import Samples


class PolicyGradientOptions(Options):
    """The policy update shared by reinforce, rnd and count."""

    batch_size: int | None = Field(
        None, ge=1, description="Samples drawn per update (None: rounds.samples_per_round).")
    lr: float = Field(1e-3, gt=0, description="Learning rate of each policy update (one fit call).")
    epochs: int = Field(1, ge=1, description="Passes over the batch per update.")
    fit_batch_size: int | None = Field(
        None, ge=1, description="Sequences per optimisation step (None: the whole batch, one step).")
    baseline_decay: float = Field(
        0.9, ge=0, lt=1, description="Running-mean baseline: b <- decay*b + (1-decay)*mean(reward).")
    kl_coef: float = Field(
        0.0, ge=0, description="Reward penalty kl_coef*(log pi(x) - log prior(x)); 0: no KL to prior.")
    keep_optimizer: bool = Field(
        False, description="Keep Adam's moments from one update to the next (one long training "
        "run); False: a fresh optimizer per update, whose first step ignores the advantages' scale.")
    patience: int = Field(
        25, ge=1, description="Stop after this many updates in a row spent no NRE (collapse).")
    keep_checkpoints: bool = Field(
        False, description="Keep every round's policy checkpoint (else only the latest).")


class RunningStats:
    """Count, mean and variance of everything seen (Welford), kept as tensors for checkpoints."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0.0, 0.0, 0.0

    def update(self, x: torch.Tensor) -> None:
        """Merge a batch of values."""
        x = x.double().flatten()
        if x.numel() == 0:
            return
        n_b, mean_b = float(x.numel()), float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> float:
        """Standard deviation of everything seen (1 before any spread is seen)."""
        var = self.m2 / self.n if self.n > 0 else 0.0
        return math.sqrt(var) if var > 1e-24 else 1.0

    def state(self) -> torch.Tensor:
        return torch.tensor([self.n, self.mean, self.m2], dtype=torch.float64)

    def load(self, t: torch.Tensor) -> None:
        self.n, self.mean, self.m2 = (float(v) for v in t.tolist())


class NoveltyBonus(ABC):
    """An intrinsic reward: raw novelty of samples, learned online from every batch."""

    def __init__(self) -> None:
        self.stats = RunningStats()

    @abstractmethod
    def raw(self, samples: Samples) -> torch.Tensor:
        """Novelty of each sample before learning from it, a float tensor [B]."""

    @abstractmethod
    def learn(self, samples: Samples, seed: int) -> dict[str, Any]:
        """Update the model on a batch; returns figures for the round record."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Everything needed to resume (tensors, numbers, lists)."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned."""

    def normalised(self, samples: Samples) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw, raw / running std of all raw bonuses so far, this batch included)."""
        raw = self.raw(samples).double()
        self.stats.update(raw)
        return raw, raw / self.stats.std

    def save(self, path: Path) -> None:
        torch.save({"model": self.state(), "stats": self.stats.state()}, path)

    def load(self, path: Path) -> None:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        self.load_state(blob["model"])
        self.stats.load(blob["stats"])


@dataclass
class PolicyState:
    """The policy after the last fitted round, its novelty model and baseline."""

    policy: Generator
    bonus: NoveltyBonus | None
    baseline: float | None


def _rel(run: Run, path: Path) -> str:
    return str(path.relative_to(run.run_dir))


class PolicyGradientMethod(RoundMethod):
    """REINFORCE on extrinsic reward plus beta times a normalised novelty bonus (none here)."""

    Options: ClassVar[type[Options]] = PolicyGradientOptions

    # -- the parts a subclass changes -----------------------------------------------------

    def beta(self) -> float:
        """Weight of the normalised novelty bonus."""
        return float(getattr(self.options, "beta", 0.0))

    def make_bonus(self, run: Run) -> NoveltyBonus | None:
        """A fresh novelty model, or None for plain REINFORCE."""
        return None

    def advantage(self, st: PolicyState, reward: torch.Tensor,
                  extrinsic: torch.Tensor) -> tuple[torch.Tensor, float | None]:
        """(advantages, baseline used): reward minus a running-mean baseline, updated here."""
        opts = self.options
        base = float(reward.mean()) if st.baseline is None else st.baseline
        st.baseline = (opts.baseline_decay * base
                       + (1 - opts.baseline_decay) * float(reward.mean()))
        return reward - base, base

    def check(self, plan: Plan) -> None:
        if self.options.keep_optimizer and not getattr(plan.generator_cls, "keeps_optimizer", False):
            raise ConfigError(f"invalid configuration: {self.name}.keep_optimizer needs a "
                              f"generator that keeps optimizer state; {plan.generator_name!r} "
                              "does not")

    # -- the steps ------------------------------------------------------------------------

    def restore(self, run: Run) -> PolicyState:
        """The policy, novelty model and baseline after the last fitted round (checkpoints)."""
        bonus = self.make_bonus(run)
        last: dict[str, Any] | None = None
        for _, status, data in run.ledger.rounds():
            if status in ("fitted", "done") and data.get("policy"):
                last = data
        if last is None:
            return PolicyState(run.prior.clone(), bonus, None)
        policy = run.prior.fresh()
        policy.load(run.run_dir / last["policy"])
        if last.get("optimizer"):
            policy.load_optimizer_state(torch.load(run.run_dir / last["optimizer"],
                                                   map_location="cpu", weights_only=True))
        if bonus is not None and last.get("bonus"):
            bonus.load(run.run_dir / last["bonus"])
        return PolicyState(policy, bonus, last.get("baseline_after"))

    def sampler(self, run: Run, state: PolicyState) -> Posterior:
        return Posterior(run.prior, state.policy, None, [], run.config.rounds.temperature)

    def should_stop(self, run: Run, state: PolicyState, r: int) -> str | None:
        stale = 0  # finished updates in a row, counted back from the last, that spent no NRE
        for _, status, data in reversed(run.ledger.rounds()):
            if status != "done":
                continue
            if data.get("nre_round", 0) > 0:
                break
            stale += 1
        if stale >= self.options.patience:
            return (f"no new samples in the last {stale} updates: the policy collapsed "
                    "onto samples already in the ledger")
        return None

    def propose(self, run: Run, state: PolicyState, r: int, n: int) -> Proposal:
        """The whole batch: samples the ledger knows are answered from it and stay in it."""
        size = self.options.batch_size or run.config.rounds.samples_per_round
        start = time.perf_counter()
        batch = state.policy.sample(size, seed=run.seed(r, "draw"),
                                    temperature=run.config.rounds.temperature)
        seconds = time.perf_counter() - start
        return Proposal(batch, {"sampling_seconds": seconds,
                                "proposals_per_second": size / seconds if seconds > 0 else None},
                        keep_batch=True)

    def learn(self, run: Run, st: PolicyState, r: int, b: Batch) -> dict[str, Any]:
        """Rewards of the whole batch, novelty bonus, advantages, one policy fit; checkpoints."""
        opts = self.options
        keys = b.keys
        batch = b.samples()
        extrinsic = torch.tensor(b.rewards, dtype=torch.float64)
        reward = extrinsic.clone()
        out: dict[str, Any] = {"batch_successes": int((extrinsic > 0).sum()),
                               "mean_extrinsic": float(extrinsic.mean()) if len(keys) else 0.0}
        t0 = time.perf_counter()
        if st.bonus is not None and len(keys):
            raw, norm = st.bonus.normalised(batch)
            reward += self.beta() * norm
            out.update(mean_bonus_raw=float(raw.mean()), mean_bonus=float(norm.mean()),
                       **st.bonus.learn(batch, seed=run.seed(r, "bonus")))
        out["bonus_seconds"] = time.perf_counter() - t0
        if len(keys):
            log_pi = st.policy.log_prob(batch).double()
            kl = log_pi - run.prior.log_prob(batch).double()
            out["kl_to_prior"] = float(kl.mean())
            if opts.kl_coef > 0:
                reward -= opts.kl_coef * kl
            adv, base = self.advantage(st, reward, extrinsic)
            settings = FitSettings(epochs=opts.epochs, lr=opts.lr,
                                   batch_size=opts.fit_batch_size or len(keys),
                                   keep_optimizer=opts.keep_optimizer)
            fit = (st.policy.fit(batch, settings, seed=run.seed(r, "policy_fit"),
                                 weights=adv.float()) if bool((adv != 0).any()) else None)
            out.update(mean_reward=float(reward.mean()), baseline_used=base,
                       mean_abs_advantage=float(adv.abs().mean()),
                       fit_seconds=fit.seconds if fit else 0.0, fit_steps=fit.steps if fit else 0,
                       fit_loss=fit.final_loss if fit else None)
        path = run.checkpoint(f"policy_r{r:03d}.pt")
        st.policy.save(path)
        out.update(policy=_rel(run, path), baseline_after=st.baseline)
        if st.policy.optimizer_state() is not None:
            opath = run.checkpoint(f"optimizer_r{r:03d}.pt")
            torch.save(st.policy.optimizer_state(), opath)
            out["optimizer"] = _rel(run, opath)
        if st.bonus is not None:
            bpath = run.checkpoint(f"bonus_r{r:03d}.pt")
            st.bonus.save(bpath)
            out["bonus"] = _rel(run, bpath)
        return out

    def finish(self, run: Run, state: PolicyState, r: int) -> dict[str, Any]:
        # Only now does the ledger name round r's checkpoints: a kill before this point
        # resumes from round r-1's, so those must still be there.
        if not self.options.keep_checkpoints:
            self._drop_older(run, r)
        return {}

    @staticmethod
    def _drop_older(run: Run, r: int) -> None:
        """Remove the checkpoints of earlier rounds, once the ledger records round r fitted."""
        for name in ("policy", "bonus", "optimizer"):
            old = run.ckpt_dir / f"{name}_r{r - 1:03d}.pt"
            if old.exists():
                old.unlink()


class ReinforceMethod(PolicyGradientMethod):
    """Plain REINFORCE on the extrinsic reward: with no success in a batch, nothing moves."""

    name = "reinforce"
    description = "Policy gradient on the extrinsic reward alone (shows the zero-gradient collapse)."


@hookimpl
def register_methods(register):
    register(ReinforceMethod.name, ReinforceMethod)
