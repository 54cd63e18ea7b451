"""Run a method end to end, and rebuild a run's outputs from its directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .evaluation import Rate
from .lock import RunLock
from .outputs import metrics_rows, summarize, write_metrics, write_summary
from .plots import acceptance_plot, success_plot
from .posterior import Posterior
from .run import Run


def evaluate_prior(run: Run) -> Rate | None:
    """The prior's success rate, measured once per run and kept in the ledger."""
    saved = Rate.from_dict(run.ledger.get_meta("eval_prior"))
    if saved is not None or run.evaluator.mode == "none":
        return saved
    # at the temperature every method samples at: the improvement compares like with like
    dist = Posterior(run.prior, run.prior, None, [], run.config.rounds.temperature)
    rate = run.evaluator.evaluate(dist, seed=run.seed("eval", "prior"),
                                  n=run.config.eval.prior_samples)
    if rate is not None:
        run.ledger.set_meta("eval_prior", rate.as_dict())
        run.log(f"prior success rate: {rate.rate:.4g}"
                + ("" if rate.exact else f" [{rate.ci[0]:.3g}, {rate.ci[1]:.3g}] on {rate.n}"))
    return rate


def evaluate_final(run: Run) -> Rate | None:
    """The result's success rate: the chosen round's evaluation, or a fresh, larger one."""
    round_, dist = run.method.final_distribution(run)
    n = run.config.eval.final_samples or run.config.eval.samples
    saved = None
    if round_ == 0 and dist.temperature == run.config.rounds.temperature:
        saved = Rate.from_dict(run.ledger.get_meta("eval_prior"))
    else:
        rec = run.ledger.round(round_)
        saved = Rate.from_dict(rec[1].get("eval")) if rec else None
    rate = saved
    if run.evaluator.mode != "none" and (saved is None or (not saved.exact and saved.n < n)):
        known = {e.key for e in run.ledger.evaluations()}
        rate = run.evaluator.evaluate(dist, seed=run.seed("eval", "final", round_), n=n,
                                      known=known)
    if rate is not None:
        run.ledger.set_meta("eval_final", rate.as_dict())
    run.ledger.set_meta("final_round", round_)
    return rate


def _timed(run: Run, key: str, step) -> Any:
    """Run step(run), adding its seconds to the ledger's meta `key`."""
    t = time.time()
    try:
        return step(run)
    finally:
        run.ledger.set_meta(key, run.ledger.get_meta(key, 0.0) + time.time() - t)


def execute(run: Run) -> dict[str, Any]:
    """Spend the run's budget with its method, then write every output; resumable at any point.

    One process at a time: a second one on the same run directory is refused at once."""
    with RunLock(run.run_dir):
        return _execute(run)


def _execute(run: Run) -> dict[str, Any]:
    t0 = time.time()
    run.host.notify("banel_run_start", run=run)
    run.track("start")
    run.log(f"{'resuming' if run.resumed else 'starting'} {run.config.method} on "
            f"{run.config.task}: seed {run.config.seed}, budget {run.ledger.budget} NREs, "
            f"{run.ledger.nre_used()} spent; run directory {run.run_dir}")
    try:
        if run.ledger.nre_used() < run.ledger.budget:
            run.oracle.executor.start()  # a cluster that cannot be reached fails here, at once
        _timed(run, "prior_eval_seconds", evaluate_prior)
        run.open_progress()
        try:
            flushed = run.oracle.flush()  # calls a killed run reserved but never recorded
            if flushed:
                run.log(f"evaluated {flushed} pending oracle calls left by an interrupted run")
            reason = run.method.run(run)
            run.close_progress(finished=True)
        finally:
            run.close_progress()
            run.oracle.executor.close()
        run.ledger.set_meta("stop_reason", reason)
        _timed(run, "final_eval_seconds", evaluate_final)
    finally:  # summed over the processes that worked on the run (a kill -9 loses its own)
        run.ledger.set_meta("wall_seconds",
                            run.ledger.get_meta("wall_seconds", 0.0) + time.time() - t0)
    summary = write_outputs(run)
    run.host.notify("banel_run_end", run=run, summary=summary)
    run.track("end", summary=summary)
    return summary


def write_outputs(run: Run) -> dict[str, Any]:
    """metrics.csv, summary.json and plots, all derived from the ledger."""
    rows = metrics_rows(run)
    write_metrics(run, rows)
    summary = summarize(run, rows, run.ledger.get_meta("stop_reason"))
    plots = run.run_dir / "plots"
    plots.mkdir(exist_ok=True)
    files = [success_plot(rows, summary, plots / "success_rate.png"),
             acceptance_plot(rows, summary, plots / "acceptance.png")]
    try:
        files += run.task.report(run, plots)
    except Exception as exc:  # noqa: BLE001 - a task's extra pictures never lose the summary
        run.log(f"task report failed: {type(exc).__name__}: {exc}")
    summary["plots"] = [str(Path(f).relative_to(run.run_dir)) for f in files if f]
    write_summary(run, summary)
    return summary
