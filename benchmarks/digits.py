"""digits-0to6 benchmark: BaNEL's success rate against the prior's, off-budget, over seeds.

    python benchmarks/digits.py            # 3 seeds, 5,000 NREs each (10-12 min a seed, plus the curve)
    python benchmarks/digits.py --quick    # a tiny prior and budget: checks the pipeline only

Prints the classifier's held-out accuracy, the prior's success rate (measured once, on
--prior-samples fresh samples, Clopper-Pearson 95%), and per seed the posterior's rate after
every round (banel_framework/curve.py: --curve-n prior samples classified, --curve-m checked
against the regions; Bonferroni-joined 95% intervals), the final rate by plain rejection
sampling (the run's own evaluator, --final-samples), the improvement over the prior and the
wall time; writes benchmarks/results/digits.json (digits_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import CURVE_SEED, write

from curve import rate_curve
from banel_framework.evaluation import Evaluator, clopper_pearson
from banel_framework.posterior import Posterior
from banel_framework.run import create_run, plan, task_context, user_layers
from banel_framework.runner import execute
from banel_framework.seeding import derive_seed

#: A tiny prior and budget: checks the pipeline, its figures say nothing about the task.
QUICK = ["generator.options.d_model=16", "generator.options.n_layers=1",
         "generator.options.n_heads=2", "task_options.prior_epochs=20", "task_options.prior_lr=0.01",
         "rounds.samples_per_round=50", "eval.samples=1000"]


def g(x: float | None) -> str:
    """A number for the console, '-' when there is none."""
    return "-" if x is None else f"{x:.3g}"


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=int, default=5000)
    ap.add_argument("--prior-samples", type=int, default=200_000)
    ap.add_argument("--curve-n", type=int, default=2_000_000)
    ap.add_argument("--curve-m", type=int, default=200_000)
    ap.add_argument("--final-samples", type=int, default=2000)
    ap.add_argument("--draws", help="Share the curve's rewarded proposals across seeds through "
                    "this file (made on first use; the same draws as rate_curve.py --draws).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", default="benchmarks/runs/digits", help="Where run directories go.")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="Extra key=value.")
    ap.add_argument("--quick", action="store_true", help="Tiny prior, 200 NREs, one seed.")
    ap.add_argument("--name", default="digits", help="Results file: benchmarks/results/NAME.json.")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.budget, args.prior_samples = args.seeds[:1], 200, 4096
        args.curve_n, args.curve_m, args.final_samples = 4096, 1024, 500
        args.sets = QUICK + args.sets
    return args


def prior_rate(sets: list[str], n: int) -> dict:
    """The prior's success rate on n fresh samples (the same prior serves every seed)."""
    p = plan(user_layers(None, sets, task="digits-0to6"))
    ctx = task_context(p, progress=False)
    start = time.perf_counter()
    built = p.task.pretrain(ctx)
    pretrain_s = time.perf_counter() - start
    prior = p.task.prior(ctx)
    ev = Evaluator(p.task, p.task.eval_oracle(ctx), p.task.codec(), p.config.eval, batch_size=4096)
    start = time.perf_counter()
    rate = ev.evaluate(Posterior(prior, prior, None, []), seed=derive_seed(12345, "prior"), n=n)
    return {"rate": rate.as_dict(), "seconds": time.perf_counter() - start,
            "pretrain_seconds": pretrain_s, "pretrain": built}


def one_seed(seed: int, args: argparse.Namespace, prior: dict) -> dict:
    """One BaNEL run (its prior rate is measured once above), then its rate after every round."""
    out = Path(args.runs) / f"seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    sets = [*args.sets, "eval.prior_samples=0", "eval.every=1000000",
            f"eval.samples={args.final_samples}", f"eval.final_samples={args.final_samples}"]
    p = plan(user_layers(None, sets, task="digits-0to6", seed=seed, budget=args.budget,
                         progress=False))
    start = time.perf_counter()
    run = create_run(p, out)
    summary = execute(run)
    wall = time.perf_counter() - start
    if args.draws:  # one set of rewarded proposals for every seed: paired curves, drawn once
        curve = rate_curve(run, n=args.curve_n, m=args.curve_m, seed=CURVE_SEED,
                           draws=args.draws)
    else:
        curve = rate_curve(run, n=args.curve_n, m=args.curve_m,
                           seed=derive_seed(seed, "benchmark-curve"))
    pr = prior["rate"]
    rows = [d for _, s, d in run.ledger.rounds() if s == "done"]
    last = curve[-1]
    return {
        "seed": seed, "run_dir": str(out), "wall_seconds": wall,
        "curve_seconds": curve[-1]["seconds"] if curve else None, "curve_draws": args.draws,
        "final": last, "final_rejection_sampling": summary["eval"]["final"],
        "improvement": last["rate"] / pr["rate"] if pr["rate"] else None,
        # the same proposals before any region: a paired comparison, free of the prior's noise
        "improvement_paired": last["rate"] / curve[0]["rate"] if curve[0]["rate"] else None,
        "improvement_low": last["ci"][0] / pr["ci"][1] if pr["ci"][1] else None,  # low/high
        "curve": [{k: c[k] for k in ("round", "rate", "ci", "acceptance", "accepted_successes")}
                  for c in curve],
        "nre_used": summary["nre_used"], "rounds": summary["rounds"],
        "solutions_found": summary["solutions_found"], "stop_reason": summary["stop_reason"],
        "acceptance_last": rows[-1].get("acceptance") if rows else None,
        "distillations": sum(1 for d in rows if d.get("distilled")),
        "plots": summary["plots"],
    }


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    args.sets = [*args.sets, f"trainer.num_threads={args.threads}"]
    prior = prior_rate(args.sets, args.prior_samples)
    pr = prior["rate"]
    clf = prior["pretrain"]["classifier"]
    print(f"classifier held-out accuracy {clf['held_out_accuracy']:.4f} on {clf['test']} images")
    print(f"prior: {pr['k']}/{pr['n']} = {pr['rate']:.3g} [{pr['ci'][0]:.3g}, {pr['ci'][1]:.3g}] "
          f"({prior['seconds']:.0f}s)")
    seeds = []
    for seed in args.seeds:
        res = one_seed(seed, args, prior)
        f, d = res["final"], res["final_rejection_sampling"] or {}
        print(f"seed {seed}: after round {f['round']}: {g(f['rate'])} "
              f"[{g(f['ci'][0])}, {g(f['ci'][1])}] (acceptance {g(f['acceptance'])}, "
              f"{f['accepted_successes']} successes kept)  x{g(res['improvement'])} "
              f"(paired x{g(res['improvement_paired'])}) "
              f"(>= x{g(res['improvement_low'])}); rejection sampling: {d.get('k')}/{d.get('n')}"
              f"; {res['nre_used']} NREs, {res['solutions_found']} solutions, "
              f"run {res['wall_seconds']:.0f}s + curve {res['curve_seconds']:.0f}s", flush=True)
        seeds.append(res)
    imps = [s["improvement"] for s in seeds if s["improvement"] is not None] or [None]
    mean = None if None in imps else sum(imps) / len(imps)
    k = sum((s["final_rejection_sampling"] or {}).get("k") or 0 for s in seeds)
    n = sum((s["final_rejection_sampling"] or {}).get("n") or 0 for s in seeds)
    lows = [s["improvement_low"] for s in seeds if s["improvement_low"] is not None]
    pooled = {"improvement_mean": mean, "improvement_min": None if mean is None else min(imps),
              "improvement_max": None if mean is None else max(imps),
              "improvement_low_min": min(lows) if lows else None,
              "rejection_sampling": {"k": k, "n": n, "rate": k / n if n else None,
                                     "ci": list(clopper_pearson(k, n))},
              "wall_seconds_max": max(s["wall_seconds"] for s in seeds)}
    print(f"{len(seeds)} seeds: improvement mean x{g(mean)} (min x{g(pooled['improvement_min'])},"
          f" max x{g(pooled['improvement_max'])}); rejection sampling pooled {k}/{n}; run wall max "
          f"{pooled['wall_seconds_max']:.0f}s")
    write("digits_quick" if args.quick else args.name, {
        "task": "digits-0to6", "quick": args.quick, "budget": args.budget, "sets": args.sets,
        "classifier": clf, "prior": prior, "seeds": seeds, "pooled": pooled,
        "goal": {"improvement": 10, "nre": 5000, "seconds_per_seed": 900},
    })


if __name__ == "__main__":
    main()
