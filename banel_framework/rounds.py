"""The round machine every method runs on: propose, reserve, evaluate, learn, finish; resumable.

A round moves through the statuses below, each written to the ledger before the next step, so a
run killed at any point continues from the last status recorded, repeating no oracle call:

    sampling -> evaluating -> evaluated -> fitted -> done      (or stopped)

A method supplies the steps (`restore`, `propose`, `learn`, `finish`, `sampler`); the base owns the
loop, the budget, the ledger, the evaluation and the events.
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import BanelError
from .interfaces import Method
from .samples import Samples, key_sequence

if TYPE_CHECKING:  # pragma: no cover
    from .posterior import Posterior
    from .run import Run

STOPPED = "stopped"


@dataclass
class Proposal:
    """A round's candidates, in order; keys the ledger knows are answered from it for free."""

    samples: Samples
    #: Figures for the round record (proposals drawn, acceptance, ...).
    data: dict[str, Any] = field(default_factory=dict)
    #: Record the whole batch's keys in the round (methods that learn from known samples too).
    keep_batch: bool = False
    #: End the run with this reason instead of evaluating (nothing is reserved).
    stop: str | None = None


@dataclass
class Batch:
    """What a round evaluated: its keys in order and their rewards from the ledger."""

    keys: list[str]
    rewards: list[float]

    def samples(self) -> Samples:
        """The batch as samples (no log-probs)."""
        return Samples.from_keys(self.keys)


class RoundMethod(Method):
    """A method as rounds on the round machine; subclasses supply the steps."""

    # -- the steps a method supplies -------------------------------------------------------

    @abstractmethod
    def restore(self, run: Run) -> Any:
        """The method's state after the last round that reached 'fitted' or 'done'."""

    @abstractmethod
    def propose(self, run: Run, state: Any, r: int, n: int) -> Proposal:
        """Round r's candidates: at most n new to the ledger are evaluated."""

    @abstractmethod
    def learn(self, run: Run, state: Any, r: int, batch: Batch) -> dict[str, Any]:
        """Update `state` from the evaluated batch, save checkpoints, return figures to record."""

    @abstractmethod
    def sampler(self, run: Run, state: Any) -> Posterior:
        """The distribution `state` samples (evaluated after each round)."""

    def finish(self, run: Run, state: Any, r: int) -> dict[str, Any]:
        """Work after learning that spends no NRE (e.g. distillation); repeated if killed."""
        return {}

    def should_stop(self, run: Run, state: Any, r: int) -> str | None:
        """A reason to stop before round r draws anything, or None."""
        return None

    # -- Method ----------------------------------------------------------------------------

    def distribution(self, run: Run) -> Posterior:
        return self.sampler(run, self.restore(run))

    def run(self, run: Run) -> str:
        state = self.restore(run)
        rc = run.config.rounds
        r = next_round(run)
        while True:
            rec = run.ledger.round(r)
            if rec is not None and rec[0] == STOPPED:
                return str(rec[1].get("stop_reason"))
            if rec is None or rec[0] == "sampling":
                if rc.max_rounds is not None and r > rc.max_rounds:
                    return f"reached rounds.max_rounds={rc.max_rounds}"
                if run.ledger.remaining() <= 0:
                    return "budget spent"
                reason = self.should_stop(run, state, r)
                if reason:
                    return reason
                reason = self._propose(run, state, r)
                if reason:
                    run.ledger.set_round(r, STOPPED, {"stop_reason": reason})
                    return reason
                rec = run.ledger.round(r)
            assert rec is not None
            status = rec[0]
            if status == "evaluating":
                t = time.time()
                run.oracle.flush()
                status = "evaluated"
                run.ledger.set_round(r, status, {**outcome(run, r),
                                                 "oracle_seconds": time.time() - t})
            if status == "evaluated":
                t = time.time()
                data = self.learn(run, state, r, self._batch(run, r))
                data["learn_seconds"] = time.time() - t
                status = "fitted"
                run.ledger.set_round(r, status, data)
            if status == "fitted":
                self._finish(run, state, r)
            r += 1

    # -- the machine -----------------------------------------------------------------------

    def _propose(self, run: Run, state: Any, r: int) -> str | None:
        """Draw round r, reserve the NREs of its new samples; a reason when the run must stop."""
        run.ledger.set_round(r, "sampling", {"nre_before": run.ledger.nre_used(),
                                             "t_start": time.time()})
        n = min(run.config.rounds.samples_per_round, run.ledger.remaining())
        t = time.time()
        prop = self.propose(run, state, r, n)
        data = {**prop.data, "propose_seconds": time.time() - t}
        if prop.stop:
            run.ledger.set_round(r, "sampling", data)
            return prop.stop
        keys = prop.samples.keys()
        texts = run.codec.decode_batch(prop.samples)
        text_keyed = run.task.key == "text"
        ident = texts if text_keyed else keys  # what makes two samples the same
        new: dict[str, int] = {}
        seen: set[str] = set()
        free = 0  # new samples the task's free check fails: failures that cost no NRE
        check = free_check(run) if run.config.rounds.free_check else None
        cut, remaining = len(keys), run.ledger.remaining()
        for i, k in enumerate(keys):
            known = run.ledger.is_known(k) or (
                text_keyed and run.ledger.key_of_text(texts[i]) is not None)
            if ident[i] in seen or known:  # texts decoded once, above
                seen.add(ident[i])
                continue
            seen.add(ident[i])
            if check is not None and not check(texts[i]):
                free += 1
                continue
            if len(new) == remaining:  # the budget ends inside this batch
                cut = i
                break
            new[k] = i
        keys = keys[:cut]
        data.setdefault("proposals_drawn", len(keys))
        data["new_candidates"] = len(new)
        data.setdefault("duplicates", len(keys) - len(new) - free)
        if check is not None:
            data["free_failures"] = data.get("free_failures", 0) + free
        if prop.keep_batch:
            data["batch"] = keys
        if new:
            run.ledger.reserve(r, list(new), [texts[i] for i in new.values()], data)
        else:
            run.ledger.set_round(r, "evaluating", data)
        return None

    @staticmethod
    def _batch(run: Run, r: int) -> Batch:
        _, data = run.ledger.round(r) or ("", {})
        keys = data.get("batch")
        if keys is None:
            keys = [e.key for e in run.ledger.evaluations(round_=r, status="done")]
        kept, rewards = [], []
        for k in keys:
            known = run.known_key(k)
            if known is not None and run.ledger.is_failed(known):
                continue  # a failed call has no reward: it is neither a success nor a failure
            kept.append(k)
            rewards.append(float((run.ledger.reward(known) if known else None) or 0.0))
        return Batch(kept, rewards)

    def _finish(self, run: Run, state: Any, r: int) -> None:
        t = time.time()
        data = self.finish(run, state, r)
        data["finish_seconds"] = time.time() - t
        if r % run.config.eval.every == 0:
            t = time.time()
            rate = run.evaluator.evaluate(self.sampler(run, state), seed=run.seed(r, "eval"))
            data["eval_seconds"] = time.time() - t
            if rate is not None:
                data["eval"] = rate.as_dict()
        _, before = run.ledger.round(r) or ("", {})
        data["round_seconds"] = time.time() - before.get("t_start", time.time())
        release_memory()
        data["rss_mib"] = rss_mib()
        run.ledger.set_round(r, "done", data)
        _, full = run.ledger.round(r) or ("", {})
        rate = full.get("eval", {}).get("rate")
        run.set_progress(round=r, ok=len(run.ledger.solutions()),
                         rate="-" if rate is None or _nan(rate) else f"{rate:.3g}")
        record = {"round": r, **{k: v for k, v in full.items() if k != "batch"}}
        _progress_line(run, r, full)
        run.host.notify("banel_round_end", run=run, record=record)
        run.track("log_round", record=record)


def next_round(run: Run) -> int:
    """The first round not yet done."""
    done = [r for r, s, _ in run.ledger.rounds() if s == "done"]
    return (max(done) if done else 0) + 1


def outcome(run: Run, r: int) -> dict[str, Any]:
    """NREs and successes of round r, and NREs spent after it."""
    evs = run.ledger.evaluations(round_=r)
    return {"nre_round": len(evs), "successes": sum(1 for e in evs if (e.reward or 0) > 0),
            "failed": sum(1 for e in evs if e.status == "failed"),
            "nre_after": run.ledger.nre_used()}


def free_check(run: Run) -> Callable[[str], bool]:
    """The task's free check (Task.valid): False for a text its oracle is sure to fail."""
    task = run.task

    def check(text: str) -> bool:
        try:
            return bool(task.valid(text))
        except Exception as e:  # a task's bug, named as such
            raise BanelError(f"task {task.name!r}: valid({text!r}) raised {e!r}") from e

    return check


def release_memory() -> None:
    """Hand the heap freed during a round back to the OS (glibc's malloc_trim; a no-op elsewhere).

    Drawing and scoring allocate large short-lived buffers; glibc keeps the freed pages, so
    without this a process's resident memory climbs by tens of MiB a round although the live
    tensors grow by one failure model (benchmarks/memory_rounds.py)."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: ctypes.CDLL | None | bool = None


def rss_mib() -> float | None:
    """This process's resident memory in MiB (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def draw_new(run: Run, posterior: Posterior, r: int, n: int,
             also: set[str] | None = None) -> Proposal:
    """Up to n accepted samples of `posterior` that are new to the ledger (and not in `also`)
    and unique; a proposal that stops the run when none came within rounds.max_draws_per_round."""
    rc = run.config.rounds
    if n <= 0:
        return Proposal(Samples.empty(), {"proposals_drawn": 0, "accepted": 0})
    invalid: set[str] = set()  # new samples the task's free check fails: never candidates
    check = free_check(run) if rc.free_check else None

    def exclude(key: str) -> bool:
        if (also and key in also) or run.is_known(key):
            return True
        if check is not None and (key in invalid or not check(run.codec.decode(key_sequence(key)))):
            invalid.add(key)
            return True
        return False

    def show(res: Any) -> None:
        run.set_progress(round=r, drawn=res.drawn, acc=f"{res.acceptance:.3g}")

    res = posterior.draw(n, seed=run.seed(r, "draw"), batch_size=rc.draw_batch_size,
                         max_draws=rc.max_draws_per_round, exclude=exclude,
                         unique=True, on_batch=show)
    data = {
        "proposals_drawn": res.drawn,
        "duplicates": res.duplicates - len(invalid),
        "accepted": res.accepted,
        "acceptance": res.acceptance,
        "sampling_seconds": res.seconds,
        "proposals_per_second": res.drawn / res.seconds if res.seconds > 0 else None,
        "accepted_per_second": res.accepted / res.seconds if res.seconds > 0 else None,
        "capped": res.capped,
        "rejected_by_round": {str(k): v for k, v in res.rejected_by.items()},
    }
    if check is not None:
        data["free_failures"] = len(invalid)
    if len(res.samples) == 0:
        data["new_candidates"] = 0
        return Proposal(res.samples, data, stop=(
            f"no new candidates: round {r} drew {res.drawn} proposals (acceptance "
            f"{res.acceptance:.3g}); all were rejected or already evaluated"))
    if res.capped:
        run.log(f"round {r}: only {len(res.samples)} new candidates in {res.drawn} proposals "
                f"(rounds.max_draws_per_round={rc.max_draws_per_round})")
    return Proposal(res.samples, data)


def _progress_line(run: Run, r: int, data: dict[str, Any]) -> None:
    """One line a round in run.log (and metrics.csv rewritten), so a long run can be followed."""
    from .outputs import metrics_rows, write_metrics

    rate = (data.get("eval") or {}).get("rate")
    acc = data.get("acceptance")
    run.log(f"round {r}: {data.get('nre_after', run.ledger.nre_used())}/{run.ledger.budget} NREs, "
            f"{data.get('successes', 0)} successes this round, {len(run.ledger.solutions())} in all"
            + (f", acceptance {acc:.3g}" if isinstance(acc, float) and not math.isnan(acc) else "")
            + (f", success rate {rate:.3g}" if isinstance(rate, float) and not _nan(rate) else ""),
            echo=False)
    write_metrics(run, metrics_rows(run))
