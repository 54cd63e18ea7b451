"""digits-0to6 benchmark: BaNEL's success rate against the prior's, off-budget, over seeds.

    python benchmarks/digits.py            # 3 seeds, 5,000 NREs each (about 15 min a seed)
    python benchmarks/digits.py --quick    # a tiny prior and budget: checks the pipeline only

Prints the classifier's held-out accuracy, the prior's success rate (measured once, on
--prior-samples fresh samples, Clopper-Pearson 95%), and per seed the final posterior's rate
with its interval, the improvement over the prior and the wall time; writes
benchmarks/results/digits.json (digits_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

from banel_framework.evaluation import Evaluator, clopper_pearson  # noqa: E402
from banel_framework.posterior import Posterior  # noqa: E402
from banel_framework.run import create_run, plan, task_context, user_layers  # noqa: E402
from banel_framework.runner import execute  # noqa: E402
from banel_framework.seeding import derive_seed  # noqa: E402

QUICK = ["generator.options.d_model=16", "generator.options.n_layers=1",
         "generator.options.n_heads=2", "task_options.prior_epochs=20", "task_options.prior_lr=0.01",
         "banel.samples_per_round=50", "eval.samples=1000"]


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=int, default=5000)
    ap.add_argument("--prior-samples", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", default="benchmarks/runs/digits", help="Where run directories go.")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="Extra key=value.")
    ap.add_argument("--quick", action="store_true", help="Tiny prior, 200 NREs, one seed.")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.budget, args.prior_samples = args.seeds[:1], 200, 4096
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
    rate = ev.evaluate(Posterior(prior, prior, p.scorer, []), seed=derive_seed(12345, "prior"), n=n)
    return {"rate": rate.as_dict(), "seconds": time.perf_counter() - start,
            "pretrain_seconds": pretrain_s, "pretrain": built}


def one_seed(seed: int, args: argparse.Namespace, prior: dict) -> dict:
    """One BaNEL run; its prior measurement is skipped (measured once above)."""
    out = Path(args.runs) / f"seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    sets = [*args.sets, "eval.prior_samples=0"]
    p = plan(user_layers(None, sets, task="digits-0to6", seed=seed, budget=args.budget,
                         progress=False))
    start = time.perf_counter()
    run = create_run(p, out)
    summary = execute(run)
    wall = time.perf_counter() - start
    final = summary["eval"]["final"]
    pr = prior["rate"]
    rows = [json.loads(json.dumps(d)) for _, s, d in run.ledger.rounds() if s == "done"]
    return {
        "seed": seed, "run_dir": str(out), "wall_seconds": wall, "final": final,
        "improvement": final["rate"] / pr["rate"] if pr["rate"] else None,
        "improvement_low": final["ci"][0] / pr["ci"][1],  # conservative: low over high
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
        f = res["final"]
        print(f"seed {seed}: {f['k']}/{f['n']} = {f['rate']:.3g} [{f['ci'][0]:.3g}, {f['ci'][1]:.3g}]"
              f"  x{res['improvement']:.3g} (>= x{res['improvement_low']:.3g})  "
              f"{res['nre_used']} NREs, {res['rounds']} rounds, {res['solutions_found']} solutions, "
              f"{res['wall_seconds']:.0f}s", flush=True)
        seeds.append(res)
    k = sum(s["final"]["k"] for s in seeds)
    n = sum(s["final"]["n"] for s in seeds)
    lo, hi = clopper_pearson(k, n)
    pooled = {"k": k, "n": n, "rate": k / n if n else None, "ci": [lo, hi],
              "improvement": (k / n) / pr["rate"] if n and pr["rate"] else None,
              "improvement_low": lo / pr["ci"][1]}
    imps = [s["improvement"] for s in seeds if s["improvement"] is not None]
    print(f"pooled over {len(seeds)} seeds: {k}/{n} = {pooled['rate']:.3g} [{lo:.3g}, {hi:.3g}]"
          f"  x{pooled['improvement']:.3g} (>= x{pooled['improvement_low']:.3g}); per-seed "
          f"improvement min {min(imps):.3g}, max {max(imps):.3g}; "
          f"wall per seed max {max(s['wall_seconds'] for s in seeds):.0f}s")
    write("digits_quick" if args.quick else "digits", {
        "task": "digits-0to6", "quick": args.quick, "budget": args.budget, "sets": args.sets,
        "classifier": clf, "prior": prior, "seeds": seeds, "pooled": pooled,
        "goal": {"improvement": 10, "nre": 5000, "seconds_per_seed": 900},
    })


if __name__ == "__main__":
    main()
