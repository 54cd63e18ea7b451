"""What a run leaves behind: metrics.csv, summary.json, plots and the console table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import yaml

from .evaluation import Rate, ratio_interval
from .run import Run

METRIC_COLUMNS = [
    "round", "nre_after", "nre_round", "successes", "solutions_total", "proposals_drawn",
    "accepted", "acceptance", "new_candidates", "duplicates", "regions", "sampling_seconds",
    "proposals_per_second", "accepted_per_second", "phi_samples", "phi_epochs", "phi_seconds",
    "phi_loss", "phi_counter_examples", "region_slack", "guard_spared", "acceptance_next",
    "distilled", "distill_samples", "distill_successes", "distill_neighbours", "distill_seconds",
    "eval_rate", "eval_low", "eval_high", "eval_n", "eval_exact", "eval_acceptance",
    "round_seconds", "propose_seconds", "oracle_seconds", "learn_seconds", "finish_seconds",
    "eval_seconds", "rss_mib", "failure_model", "proposal_after",
]

#: summary.json's `phase_seconds`: each phase and the per-round column it sums.
PHASES = {"propose": "propose_seconds", "oracle": "oracle_seconds", "learn": "learn_seconds",
          "finish": "finish_seconds", "eval": "eval_seconds"}


def phase_seconds(run: Run, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds spent in each phase, summed over the finished rounds and every resume."""
    out = {phase: sum(r.get(col) or 0.0 for r in rows) for phase, col in PHASES.items()}
    out["prior_eval"] = run.ledger.get_meta("prior_eval_seconds", 0.0)
    out["final_eval"] = run.ledger.get_meta("final_eval_seconds", 0.0)
    out["other"] = max(0.0, run.ledger.get_meta("wall_seconds", 0.0) - sum(out.values()))
    return out


def metrics_rows(run: Run) -> list[dict[str, Any]]:
    """One row a finished round, straight from the ledger."""
    rows, total = [], 0
    for r, status, data in run.ledger.rounds():
        if status != "done":
            continue
        total += data.get("successes", 0)
        ev = data.get("eval") or {}
        ci = ev.get("ci") or [None, None]
        row = {k: data.get(k) for k in METRIC_COLUMNS}
        row.update(round=r, solutions_total=total, distilled=bool(data.get("distilled")),
                   eval_rate=ev.get("rate"), eval_low=ci[0], eval_high=ci[1], eval_n=ev.get("n"),
                   eval_exact=ev.get("exact"), eval_acceptance=ev.get("acceptance"))
        rows.append(row)
    return rows


def write_metrics(run: Run, rows: list[dict[str, Any]]) -> Path:
    """metrics.csv: one row a round."""
    path = run.run_dir / "metrics.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv(row.get(k)) for k in METRIC_COLUMNS})
    return path


def _csv(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return "" if v is None else v


def _ok(rate: float | None) -> bool:
    return rate is not None and not math.isnan(rate)


def _row_rate(row: dict[str, Any]) -> Rate | None:
    """A metrics row's evaluation as a Rate (None when the round was not evaluated)."""
    if not _ok(row.get("eval_rate")):
        return None
    return Rate(row["eval_rate"], row["eval_n"], (row["eval_low"], row["eval_high"]),
                bool(row["eval_exact"]), None, row.get("eval_acceptance"))


def discovery(run: Run) -> dict[str, Any]:
    """The yield of the NREs: distinct successes, and the NRE (1-based, in the order the budget
    was reserved) of each; the first success is censored at the NREs used when there is none."""
    done = run.ledger.evaluations(status="done")
    at = [i + 1 for i, e in enumerate(done) if (e.reward or 0) > 0]
    return {"distinct_successes": len(at), "nre_to_first_success": at[0] if at else None,
            "first_success_censored_at": None if at else len(done), "success_nres": at}


def improvement_ci(final: Rate | None, prior: Rate | None,
                   confidence: float) -> list[float] | None:
    """Interval of final/prior when both were sampled (exact rates have none)."""
    if final is None or prior is None or final.k is None or prior.k is None:
        return None
    ci = ratio_interval(final.k, final.n, prior.k, prior.n, confidence)
    return list(ci) if ci else None


def summarize(run: Run, rows: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
    """The content of summary.json."""
    ledger = run.ledger
    prior = Rate.from_dict(ledger.get_meta("eval_prior"))
    final = Rate.from_dict(ledger.get_meta("eval_final"))
    best, best_round = None, None
    for row in rows:
        rate = _row_rate(row)
        if rate is not None and (best is None or rate.rate > best.rate):
            best, best_round = rate, row["round"]
    solutions = ledger.solutions()
    last = _row_rate(rows[-1]) if rows else None

    def ratio(a: Rate | None, b: Rate | None) -> float | None:
        if a is None or b is None or not _ok(a.rate) or not _ok(b.rate) or b.rate <= 0:
            return None
        return a.rate / b.rate

    return {
        "task": run.config.task,
        "method": run.config.method,
        "seed": run.config.seed,
        "generator": ledger.get_meta("generator") or {"name": run.plan.generator_name},
        "nre_budget": ledger.budget,
        "nre_used": ledger.nre_used(),
        "nre_pending": len(ledger.pending()),
        "failed_evaluations": ledger.n_failed(),
        "failed_count_against_budget": ledger.failed_counts,
        "oracle_attempts": ledger.attempts(),
        "rounds": len(rows),
        "solutions_found": len(solutions),
        "discovery": discovery(run),
        "solutions": [s.text for s in solutions[:50]],
        "eval": {
            "mode": run.evaluator.mode,
            "prior": prior.as_dict() if prior else None,
            "final": final.as_dict() if final else None,
            "last": last.as_dict() if last else None,
            "best": ({**best.as_dict(), "round": best_round} if best else None),
        },
        "final_round": ledger.get_meta("final_round"),
        "select": getattr(run.method.options, "select", "last"),
        "temperature": run.config.rounds.temperature,
        "improvement": ratio(final, prior),
        "improvement_ci": improvement_ci(final, prior, run.config.eval.confidence),
        "improvement_confidence": run.config.eval.confidence,
        "best_improvement": ratio(best, prior),
        "stop_reason": stop_reason,
        "wall_seconds": ledger.get_meta("wall_seconds", 0.0),
        "phase_seconds": phase_seconds(run, rows),
        "rss_mib": {"first_round": rows[0].get("rss_mib") if rows else None,
                    "last_round": rows[-1].get("rss_mib") if rows else None},
        "run_dir": str(run.run_dir),
    }


def write_summary(run: Run, summary: dict[str, Any]) -> Path:
    """summary.json."""
    path = run.run_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return path


def console_table(summary: dict[str, Any], rows: list[dict[str, Any]], last: int = 12) -> str:
    """A short plain-text table for the end of a run."""
    lines = [f"{'round':>5} {'NREs':>7} {'accept':>9} {'new':>5} {'ok':>4} {'success rate [95% CI]':>32}"]
    for row in rows[-last:]:
        lines.append(f"{row['round']:>5} {row.get('nre_after') or 0:>7} "
                     f"{_g(row.get('acceptance')):>9} {row.get('new_candidates') or 0:>5} "
                     f"{row.get('successes') or 0:>4} {_rate(row.get('eval_rate'), row.get('eval_low'), row.get('eval_high'), row.get('eval_exact')):>32}")
    if len(rows) > last:
        lines.insert(1, f"{'...':>5} ({len(rows) - last} earlier rounds in metrics.csv)")
    ev = summary["eval"]
    lines.append("")
    for name in ("prior", "final", "best"):
        e = ev.get(name)
        if e:
            lines.append(f"{name:>6}: {_rate(e['rate'], e['ci'][0], e['ci'][1], e['exact'])}"
                         + (f"  (round {e['round']})" if name == "best" else ""))
            if name == "final" and e.get("novel_n") is not None and e["n"]:
                lines.append(f"{'':>8}{1 - e['novel_n'] / e['n']:.1%} of these samples were "
                             f"already in the ledger; among the others: "
                             f"{e['novel_k']}/{e['novel_n']} succeed")
            if name == "final" and e.get("distinct_k") is not None:
                lines.append(f"{'':>8}distinct successful samples: {e['distinct_k']} "
                             f"({e['novel_distinct_k']} not in the ledger)")
    if ev.get("mode") == "none":
        lines.append("  (the task offers no cheap evaluation oracle: only the ledger's figures)")
    if summary.get("failed_evaluations"):
        lines.append(f"failed oracle calls: {summary['failed_evaluations']} (recorded with their "
                     "errors, never used as failures; "
                     + ("counted" if summary.get("failed_count_against_budget", True)
                        else "not counted") + " against the budget)")
    d = summary.get("discovery") or {}
    if d:
        first = d.get("nre_to_first_success")
        lines.append(f"discovery: {d['distinct_successes']} distinct successes in "
                     f"{summary['nre_used']} NREs; first at NRE "
                     + (f"{first}" if first else f"- (none in {d['first_success_censored_at']})"))
    imp, ci = summary.get("improvement"), summary.get("improvement_ci")
    if ci:
        conf = summary.get("improvement_confidence", 0.95)
        lines.append(f"improvement interval ({conf:.0%}): [{ci[0]:.3g}, {ci[1]:.3g}]"
                     + ("" if ci[0] > 1 or ci[1] < 1 else
                        "; the interval includes 1: at this sample size the final generator is "
                        "not distinguishable from the prior (raise eval.final_samples)"))
    lines.append(f"improvement (final/prior): {'-' if imp is None else f'{imp:.3g}x'}; "
                 f"NREs {summary['nre_used']}/{summary['nre_budget']}; "
                 f"solutions {summary['solutions_found']}; {summary['wall_seconds']:.1f}s")
    ph = summary.get("phase_seconds") or {}
    if ph:
        lines.append("time: " + ", ".join(f"{k.replace('_', ' ')} {v:.1f}s" for k, v in ph.items()))
    lines.append(f"stopped: {summary['stop_reason']}")
    return "\n".join(lines)


def _g(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def _rate(rate: Any, lo: Any, hi: Any, exact: Any) -> str:
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "-"
    if exact:
        return f"{rate:.4g} (exact)"
    return f"{rate:.4g} [{lo:.3g}, {hi:.3g}]"
