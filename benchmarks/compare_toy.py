"""Every method on toy-1d over seeds at 100 NREs, the baselines as tuned by tune_baselines.py.

  python benchmarks/compare_toy.py            # 5 seeds, 100 NREs (about a minute of CPU)
  python benchmarks/compare_toy.py --quick    # 2 seeds, 30 NREs
"""

from __future__ import annotations

import argparse
import time

from common import write
from tuned import best_settings, method_sets

from banel_framework.compare import compare

METHODS = ["pretrained", "banel", "reinforce", "rnd", "count"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--out", default="runs/compare-toy")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    seeds, budget, out = (2, 30, args.out + "-quick") if args.quick else (
        args.seeds, args.budget, args.out)
    tuned = method_sets(best_settings(["tune_toy-1d_b100"]))
    start = time.perf_counter()
    result = compare("toy-1d", METHODS, list(range(seeds)), out=out, budget=budget,
                     sets=["trainer.num_threads=1"], method_sets=tuned, echo=print)
    print(result["markdown"])
    write("compare_toy_quick" if args.quick else f"compare_toy_b{budget}",
          {"seeds": seeds, "budget": budget, "method_sets": tuned, "out": out,
           "seconds": time.perf_counter() - start,
           **{k: v for k, v in result.items() if k not in ("markdown", "curves")}})


if __name__ == "__main__":
    main()
