"""The BaNEL rounds: sample the posterior, evaluate, fit a failure model, add its region, distil."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .interfaces import Generator, LogProbModel, Method
from .mixture import Mixture, trainable
from .posterior import Posterior, RejectionRegion, guard_slack
from .run import Run
from .samples import Samples

STOPPED = "stopped"


@dataclass
class BanelState:
    """Where the rounds stand: the posterior in use and the next round's number."""

    posterior: Posterior
    next_round: int
    stop_reason: str | None = None


def _rel(run: Run, path: Path) -> str:
    return str(path.relative_to(run.run_dir))


def load_generator(template: Generator, path: Path) -> Generator:
    """A generator shaped like `template` with the weights saved at `path`."""
    model = template.fresh()
    model.load(path)
    return model


@dataclass
class RoundState:
    """The posterior as it stood after one finished round."""

    round: int
    posterior: Posterior
    failure_model: LogProbModel | None


def replay(run: Run) -> Iterator[RoundState]:
    """Rebuild the posterior round by round from the ledger and the checkpoints."""
    cfg = run.config
    prior = run.prior
    proposal: Generator = prior
    regions: list[RejectionRegion] = []
    for r, status, data in run.ledger.rounds():
        if status != "done":
            return
        phi = None
        if data.get("failure_model"):
            parent = trainable(proposal) if cfg.failure_model.init == "proposal" else prior
            phi = run.failure_builder.load(parent, run.run_dir / data["failure_model"])
            ref = prior if cfg.posterior.reference == "prior" else proposal
            regions.append(RejectionRegion(r, phi, ref, data.get("region_slack", 0.0)))
        if data.get("proposal_after"):
            proposal = mix(run, load_generator(prior, run.run_dir / data["proposal_after"]), prior)
        yield RoundState(r, Posterior(prior, proposal, run.scorer, list(regions),
                                      cfg.banel.temperature), phi)


def mix(run: Run, distilled: Generator, prior: Generator) -> Generator:
    """The distilled proposal, mixed with the prior when banel.distill.prior_mix > 0."""
    alpha = run.config.banel.distill.prior_mix
    return Mixture(distilled, prior, alpha) if alpha > 0 else distilled


def restore(run: Run) -> BanelState:
    """The state to continue from: the posterior after the last finished round."""
    last: RoundState | None = None
    for last in replay(run):
        pass
    if last is None:
        posterior = Posterior(run.prior, run.prior, run.scorer, [], run.config.banel.temperature)
        next_round = 1
    else:
        posterior, next_round = last.posterior, last.round + 1
    rec = run.ledger.round(next_round)
    stop = rec[1].get("stop_reason") if rec is not None and rec[0] == STOPPED else None
    return BanelState(posterior, next_round, stop)


class BanelMethod(Method):
    """BaNEL: learn failure models on negatives and sample the posterior that avoids them."""

    name = "banel"
    description = "Bayesian Negative Evidence Learning (failure models + rejection posterior)."
    #: False gives the 'pretrained' baseline: the same rounds with nothing learned.
    learns = True

    def distribution(self, run: Run) -> Posterior:
        return restore(run).posterior

    def final_distribution(self, run: Run) -> tuple[int, Posterior]:
        """The last posterior, or with banel.select=best-observed the posterior whose own
        candidates had the highest success rate in the ledger (round 0: the prior)."""
        states = list(replay(run))
        prior = Posterior(run.prior, run.prior, run.scorer, [], run.config.banel.temperature)
        if run.config.banel.select == "last" or not states:
            return (states[-1].round, states[-1].posterior) if states else (0, prior)
        best = observed_best(run)
        if best is None:
            return states[-1].round, states[-1].posterior
        by_round = {st.round: st.posterior for st in states}
        return best, by_round.get(best, prior)

    def run(self, run: Run) -> str:
        st = restore(run)
        if st.stop_reason:
            return st.stop_reason
        bc = run.config.banel
        while True:
            r = st.next_round
            rec = run.ledger.round(r)
            if rec is None or rec[0] == "sampling":
                if bc.max_rounds is not None and r > bc.max_rounds:
                    return f"reached max_rounds={bc.max_rounds}"
                if run.ledger.remaining() <= 0:
                    return "budget spent"
                if not self._propose(run, st, r):
                    reason = self._stop(run, r, st)
                    return reason
                rec = run.ledger.round(r)
            assert rec is not None
            status, _ = rec
            if status == "evaluating":
                run.oracle.flush()
                status = "evaluated"
                run.ledger.set_round(r, status, self._outcome(run, r))
            phi = None
            if status == "evaluated":
                phi = self._fit_failure_model(run, st, r) if self.learns else None
                status = "fitted"
                if not self.learns:
                    run.ledger.set_round(r, status, {"failure_model": None})
            if status == "fitted":
                self._add_region(run, st, r, phi)
                self._finish_round(run, st, r)
            st.next_round = r + 1

    # -- one round -------------------------------------------------------------------------

    def _propose(self, run: Run, st: BanelState, r: int) -> bool:
        """Draw this round's new candidates and reserve their NREs; False when none came."""
        bc = run.config.banel
        m = min(bc.samples_per_round, run.ledger.remaining())
        run.ledger.set_round(r, "sampling", {"nre_before": run.ledger.nre_used(),
                                             "t_start": time.time()})

        def show(res: Any) -> None:
            run.set_progress(round=r, drawn=res.drawn, acc=f"{res.acceptance:.3g}")

        res = st.posterior.draw(m, seed=run.seed(r, "draw"), batch_size=bc.draw_batch_size,
                                max_draws=bc.max_draws_per_round, exclude=run.ledger.is_known,
                                unique=True, on_batch=show)
        data = {
            "proposals_drawn": res.drawn,
            "accepted": res.accepted,
            "acceptance": res.acceptance,
            "new_candidates": len(res.samples),
            "duplicates": res.duplicates,
            "sampling_seconds": res.seconds,
            "proposals_per_second": res.drawn / res.seconds if res.seconds > 0 else None,
            "accepted_per_second": res.accepted / res.seconds if res.seconds > 0 else None,
            "capped": res.capped,
            "rejected_by_round": {str(k): v for k, v in res.rejected_by.items()},
            "regions": len(st.posterior.regions),
        }
        if len(res.samples) == 0:
            run.ledger.set_round(r, "sampling", data)
            return False
        if res.capped:
            run.log(f"round {r}: only {len(res.samples)} new candidates in {res.drawn} proposals "
                    f"(max_draws_per_round={bc.max_draws_per_round})")
        run.ledger.reserve(r, res.samples.keys(), run.codec.decode_batch(res.samples), data)
        return True

    def _stop(self, run: Run, r: int, st: BanelState) -> str:
        _, data = run.ledger.round(r) or ("", {})
        reason = (f"no new candidates: round {r} drew {data.get('proposals_drawn', 0)} proposals "
                  f"(acceptance {data.get('acceptance', float('nan')):.3g}); all were rejected "
                  "or already evaluated")
        run.ledger.set_round(r, STOPPED, {"stop_reason": reason})
        return reason

    def _outcome(self, run: Run, r: int) -> dict[str, Any]:
        evs = run.ledger.evaluations(round_=r)
        return {"nre_round": len(evs), "successes": sum(1 for e in evs if (e.reward or 0) > 0),
                "nre_after": run.ledger.nre_used()}

    def _fit_failure_model(self, run: Run, st: BanelState, r: int) -> LogProbModel | None:
        cfg = run.config
        fm = cfg.failure_model
        evs = (run.ledger.evaluations(round_=r, status="done") if fm.data == "round"
               else run.ledger.evaluations(upto_round=r, status="done"))
        keys = [e.key for e in evs if (e.reward or 0) <= 0 or cfg.banel.train_on_positives]
        if not keys:
            run.ledger.set_round(r, "fitted", {"failure_model": None, "phi_samples": 0})
            return None
        parent = trainable(st.posterior.proposal) if fm.init == "proposal" else st.posterior.prior
        extra: dict[str, Any] = {}
        counter = []
        if fm.success_weight > 0:  # known successes so far, as counter-examples
            counter = successes_upto(run, r)
            extra = {"counter_examples": Samples.from_keys(counter) if counter else None,
                     "counter_weight": fm.success_weight}
        phi, fit = run.failure_builder.fit(parent, Samples.from_keys(keys), fm.fit,
                                           from_scratch=fm.init == "scratch",
                                           seed=run.seed(r, "failure_model"), **extra)
        path = run.checkpoint(f"failure_model_r{r:03d}.pt")
        phi.save(path)
        run.ledger.set_round(r, "fitted", {
            "failure_model": _rel(run, path), "phi_samples": len(keys),
            "phi_counter_examples": len(counter),
            "phi_epochs": fm.fit.epochs, "phi_seconds": fit.seconds, "phi_steps": fit.steps,
            "phi_loss": fit.final_loss})
        return phi

    def _add_region(self, run: Run, st: BanelState, r: int, phi: LogProbModel | None) -> None:
        cfg = run.config
        _, data = run.ledger.round(r) or ("", {})
        if not data.get("failure_model"):
            return
        prior, proposal = st.posterior.prior, st.posterior.proposal
        if phi is None:  # resumed after the fit: load the checkpoint
            parent = trainable(proposal) if cfg.failure_model.init == "proposal" else prior
            phi = run.failure_builder.load(parent, run.run_dir / data["failure_model"])
        ref = prior if cfg.posterior.reference == "prior" else proposal
        slack = data.get("region_slack")
        if slack is None and cfg.posterior.guard_successes:
            slack, spared = self._guard(run, phi, ref)
            run.ledger.set_round(r, "fitted", {"region_slack": slack, "guard_spared": spared})
        st.posterior.regions.append(RejectionRegion(r, phi, ref, slack or 0.0))

    def _guard(self, run: Run, phi: LogProbModel, ref: Generator) -> tuple[float, int]:
        """The slack that keeps a new region off every success in the ledger, and how many
        successes it would have rejected without it."""
        keys = [e.key for e in run.ledger.solutions()]
        if not keys:
            return 0.0, 0
        known = Samples.from_keys(keys)
        log_ref = ref.log_prob(known).detach().cpu().float()
        log_phi = phi.log_prob(known).detach().cpu().float()
        spared = int(run.scorer.reject(log_ref, log_phi).sum())
        return guard_slack(run.scorer, log_ref, log_phi), spared

    def _finish_round(self, run: Run, st: BanelState, r: int) -> None:
        cfg = run.config
        data: dict[str, Any] = {}
        dc = cfg.banel.distill
        if self.learns and dc.enabled and st.posterior.regions:
            acceptance = self._acceptance(run, st, r)
            data["acceptance_next"] = acceptance
            if acceptance < dc.acceptance_below:
                data.update(self._distill(run, st, r))
        if r % cfg.eval.every == 0:
            rate = run.evaluator.evaluate(st.posterior, seed=run.seed(r, "eval"))
            if rate is not None:
                data["eval"] = rate.as_dict()
        _, before = run.ledger.round(r) or ("", {})
        data["round_seconds"] = time.time() - before.get("t_start", time.time())
        run.ledger.set_round(r, "done", data)
        _, full = run.ledger.round(r) or ("", {})
        record = {"round": r, **full}
        run.set_progress(round=r, ok=sum(1 for _ in run.ledger.solutions()),
                         rate=_fmt(full.get("eval", {}).get("rate")))
        run.host.notify("banel_round_end", run=run, record=record)

    def _acceptance(self, run: Run, st: BanelState, r: int) -> float:
        """Acceptance of the updated posterior: exact when possible, else from one probe batch."""
        ev = run.evaluator
        if ev.mode == "exact" and ev.support is not None:
            return st.posterior.acceptance(ev.support)
        bc = run.config.banel
        res = st.posterior.draw(bc.draw_batch_size, seed=run.seed(r, "probe"),
                                batch_size=bc.draw_batch_size, max_draws=bc.draw_batch_size)
        return res.acceptance

    def _distill(self, run: Run, st: BanelState, r: int) -> dict[str, Any]:
        """Fit a fresh proposal on posterior samples (no NREs); the filters still apply."""
        cfg = run.config
        dc, bc = cfg.banel.distill, cfg.banel
        start = time.perf_counter()
        res = st.posterior.draw(dc.samples, seed=run.seed(r, "distill"),
                                batch_size=bc.draw_batch_size, max_draws=bc.max_draws_per_round,
                                unique=dc.dedupe)
        out: dict[str, Any] = {"distill_drawn": res.drawn, "distill_samples": len(res.samples)}
        if len(res.samples) == 0:
            run.log(f"round {r}: distillation skipped, the posterior gave no samples "
                    f"in {res.drawn} proposals")
            return out
        base = st.posterior.prior if dc.init == "prior" else trainable(st.posterior.proposal)
        distilled = base.clone()
        data, known, near = distill_data(run, res.samples, r, st.posterior)
        fit = distilled.fit(data, dc.fit, seed=run.seed(r, "distill_fit"))
        out["distill_successes"] = known
        if dc.success_neighbours > 0:
            out["distill_neighbours"] = near
        path = run.checkpoint(f"proposal_r{r:03d}.pt")
        distilled.save(path)
        st.posterior = st.posterior.with_proposal(mix(run, distilled, st.posterior.prior))
        out.update(distilled=True, proposal_after=_rel(run, path), distill_loss=fit.final_loss,
                   distill_seconds=time.perf_counter() - start)
        run.log(f"round {r}: distilled a new proposal on {len(res.samples)} posterior samples "
                f"(acceptance was {res.acceptance:.3g})")
        return out


def successes_upto(run: Run, r: int) -> list[str]:
    """Keys of the ledger's successes found in rounds up to r."""
    return [e.key for e in run.ledger.solutions() if e.round <= r]


def distill_data(run: Run, samples: Samples, r: int, posterior: Posterior | None = None
                 ) -> tuple[Samples, int, int]:
    """Posterior samples and, with distill.success_share > 0, the ledger's successes up to
    round r (and, with success_neighbours, their neighbours), together about that share of
    the fit; returns (data, successes, neighbours)."""
    dc = run.config.banel.distill
    share = dc.success_share
    known = successes_upto(run, r) if share > 0 else []
    if not known:
        return samples, 0, 0
    total = round(share / (1 - share) * len(samples))  # rows of positive evidence
    near = Samples.from_keys([])
    if dc.success_neighbours > 0 and posterior is not None:
        near = neighbours(run, posterior, known, round(total * dc.success_neighbours), r)
    n_near = len(near)
    # repeated, not up-weighted: one large weight would inflate Adam's second moment and
    # freeze the very parameters it should move (measured on toy-1d)
    copies = max(1, round((total - n_near) / len(known)))
    parts = [samples, Samples.from_keys(known * copies)] + ([near] if n_near else [])
    return Samples.cat(parts), len(known), n_near


def neighbours(run: Run, posterior: Posterior, known: list[str], n: int, r: int) -> Samples:
    """Up to n distinct completions, by the current proposal, of random prefixes of the known
    successes, kept when no failure region rejects them and the ledger has not evaluated them."""
    proposal = trainable(posterior.proposal)
    base = Samples.from_keys(known)
    gen = torch.Generator().manual_seed(run.seed(r, "neighbours"))
    kept: set[str] = set()
    rows: list[Samples] = []
    for attempt in range(8):  # a few batches; fewer neighbours rather than a long search
        pick = torch.randint(len(known), (max(n, 1) * 2,), generator=gen)
        prefixes = base.select(pick)
        cut = 1 + (torch.rand(len(pick), generator=gen) * (prefixes.lengths - 1).clamp(min=1)).long()
        prefixes = Samples(prefixes.tokens, torch.minimum(cut, prefixes.lengths - 1).clamp(min=1))
        done = proposal.complete(prefixes, seed=run.seed(r, "neighbours", attempt))
        rejected, _ = posterior.reject_mask(done)
        take = []
        for i, key in enumerate(done.keys()):
            if len(kept) < n and not rejected[i] and key not in kept \
                    and not run.ledger.is_known(key):
                kept.add(key)
                take.append(i)
        rows.append(done.select(take))
        if len(kept) >= n:
            break
    return Samples.cat(rows)


def observed_best(run: Run) -> int | None:
    """The posterior (by the round after which it stood; 0 = prior) whose candidates, drawn in
    the next round, had the highest success rate; ties go to the later one."""
    best, best_rate = None, -1.0
    for r, status, data in run.ledger.rounds():
        n = data.get("nre_round") or 0
        if status != "done" or n == 0:
            continue
        rate = (data.get("successes") or 0) / n
        if rate >= best_rate:
            best, best_rate = r - 1, rate
    return best if best_rate > 0 else None


class PretrainedMethod(BanelMethod):
    """The pretrained baseline: spend the budget on new prior samples, learn nothing."""

    name = "pretrained"
    description = "No update: sample the prior (new samples only), the reference rate."
    learns = False


def _fmt(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"
