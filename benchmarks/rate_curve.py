"""The success rate of a finished run's posterior after every round, off-budget.

    python benchmarks/rate_curve.py RUN_DIR [--n 1000000] [--m 200000]
    python benchmarks/rate_curve.py RUN_DIR --draws DRAWS.pt   # reuse one prior's draws
    python benchmarks/rate_curve.py --quick      # a 300-NRE toy-1d run, small n and m

For runs without distillation (one proposal throughout): n proposals are rewarded by the task's
cheap evaluation oracle, m more are checked against every region, and the rate after round r
is (successes no region up to r rejects / n) / (accepted / m) (banel_framework.curve). Also
printed: the rate when the posterior excludes the failures the ledger knew after round r.
Writes benchmarks/results/rate_curve_<run name>.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import CURVE_SEED, write

from curve import rate_curve
from banel_framework.run import create_run, open_run, plan, user_layers
from banel_framework.runner import execute


def quick_run(root: Path) -> Path:
    """A toy-1d run without distillation, for --quick."""
    p = plan(user_layers(None, ["banel.distill.enabled=false"], task="toy-1d", budget=300,
                         progress=False))
    run = create_run(p, root / "toy")
    execute(run)
    return run.run_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?")
    ap.add_argument("--n", type=int, default=1_000_000, help="Proposals rewarded.")
    ap.add_argument("--m", type=int, default=200_000, help="Proposals checked for acceptance.")
    ap.add_argument("--seed", type=int, default=CURVE_SEED)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--draws", help="File of rewarded proposals to reuse (made on first use): "
                    "runs that share a prior share their draws.")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = None
    if args.quick:
        tmp = tempfile.TemporaryDirectory()
        args.run_dir, args.n, args.m = str(quick_run(Path(tmp.name))), 20_000, 5_000
    if not args.run_dir:
        ap.error("give a run directory (or --quick)")
    run = open_run(args.run_dir)
    start = time.perf_counter()
    curve = rate_curve(run, n=args.n, m=args.m, seed=args.seed, draws=args.draws)
    prior = curve[0]["rate"] if curve else None
    print(f"{run.config.task}, {args.run_dir}: {args.n:,} proposals rewarded, {args.m:,} checked")
    print("round  acceptance  kept successes  rate [95%]  x prior | excluding known: acceptance"
          "  rate")
    for c in curve:
        ex = c["excluding_known"]
        gain = c["rate"] / prior if prior else float("nan")
        print(f"{c['round']:>5}  {c['acceptance']:.3g}  {c['accepted_successes']:>6}  "
              f"{c['rate']:.3g} [{c['ci'][0]:.2g}, {c['ci'][1]:.2g}]  x{gain:.3g} | "
              f"{ex['acceptance']:.3g}  {ex['rate']:.3g}")
    name = "rate_curve_quick" if args.quick else f"rate_curve_{Path(args.run_dir).name}"
    write(name, {"run_dir": str(args.run_dir), "task": run.config.task, "n": args.n, "m": args.m,
                 "seconds": time.perf_counter() - start, "curve": curve})
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
