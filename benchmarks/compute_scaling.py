"""Improvement against failure-model epochs per round (paper Fig. 10), leading zeros disallowed.

`--leading-zeros` runs the same sweep with leading zeros allowed (the paper's figure is for
disallowed; its points are drawn for shape only).

More epochs on p_phi cost compute but no NREs. Runs addition-attack for each epoch count and
seed (run directories are reused), then plots the mean improvement with the per-seed points.

  python benchmarks/compute_scaling.py --seeds 3 --budget 7500
  python benchmarks/compute_scaling.py --quick
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from addition_attack import QUICK, run_seed
from common import RESULTS, parallel, write

from banel_framework.config import parse_overrides

#: The paper's improvement at each epoch count (leading zeros disallowed), read off Fig. 10.
PAPER = {1: 4, 2: 10, 3: 13, 10: 88, 20: 40, 50: 6, 100: 72}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", default="1,2,5,10,20,50")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=7500)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="runs/bench-scaling")
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side, one thread each")
    ap.add_argument("--name", default="compute_scaling", help="results/<name>.json and .png")
    ap.add_argument("--leading-zeros", action="store_true", help="allow leading zeros")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    epochs = [int(e) for e in args.epochs.split(",")]
    lz = "true" if args.leading_zeros else "false"
    sets = [f"task_options.allow_leading_zeros={lz}", *args.sets]
    budget, seeds = args.budget, args.seeds
    if args.quick:
        sets, budget, seeds, epochs = QUICK + sets, 80, 1, [1, 3]
    calls, keys = [], []
    for e in epochs:
        for seed in range(seeds):
            layers = [{"task": "addition-attack", "seed": seed, "budget": budget,
                       "progress": False, "banel": {"failure_model": {"fit": {"epochs": e}}},
                       "trainer": {"num_threads": 1} if args.jobs > 1 else {}},
                      parse_overrides(sets)]
            calls.append((Path(args.out) / ("quick-" if args.quick else "") / f"e{e}-seed{seed}",
                          layers))
            keys.append((e, seed))
    rows = []
    for (e, seed), s in zip(keys, parallel(run_seed, calls, args.jobs)):
        rows.append({"epochs": e, "seed": seed, "improvement": s["improvement"],
                     "final": s["eval"]["final"]["rate"], "prior": s["eval"]["prior"]["rate"],
                     "best_improvement": s["best_improvement"]})
    for e in epochs:
        gains = [r["improvement"] for r in rows if r["epochs"] == e]
        ok = [g for g in gains if g is not None]
        print(f"epochs {e:>3}: improvement per seed {gains}, mean {statistics.mean(ok) if ok else None}")
    fig, ax = plt.subplots(figsize=(6, 4))
    pts = [r for r in rows if r["improvement"] is not None]
    ax.scatter([r["epochs"] for r in pts], [r["improvement"] for r in pts], alpha=0.5, label="seed")
    means = []
    for e in epochs:
        vals = [r["improvement"] for r in pts if r["epochs"] == e]
        if vals:
            means.append((e, statistics.mean(vals)))
    ax.plot([m[0] for m in means], [m[1] for m in means], marker="o", color="C1", label="mean")
    ax.plot(list(PAPER), list(PAPER.values()), marker="s", ls=":", color="C2",
            label="paper, Fig. 10 (no leading zeros; read off the figure)")
    ax.axhline(1, color="grey", ls="--", label="prior")
    ax.set_xscale("log")
    ax.set_yscale("log")  # a ratio; the seeds span decades
    ax.set_xlabel("failure-model epochs per round")
    ax.set_ylabel("improvement over the prior")
    which = "leading zeros allowed" if args.leading_zeros else "no leading zeros"
    ax.set_title(f"addition-attack, {which}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.name + ("_quick" if args.quick else "")
    png = RESULTS / (name + ".png")
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")
    write(name, {"args": vars(args), "rows": rows, "paper": PAPER})


if __name__ == "__main__":
    main()
