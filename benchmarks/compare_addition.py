"""The paper's comparison on addition-attack: every method over seeds, same budget, ledger, evaluation.

Runs `banel compare` (resumable: rerunning skips finished runs), prints the table and checks the
goal: BaNEL's improvement over pretrained at least 10 times the best baseline's. Writes
benchmarks/results/<name>.json.

  python benchmarks/compare_addition.py --seeds 5 --budget 7500     # the reproduction
  python benchmarks/compare_addition.py --quick                      # tiny models, for CI
  python benchmarks/compare_addition.py --standin --seeds 3 --set eval.every=5
      # a stand-in target and attacker (STANDIN below) until the task ships its checkpoints
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import write
from tuned import best_settings, method_sets, tuning_files

from banel_framework.compare import compare

METHODS = "pretrained,banel,reinforce,rnd,count"
QUICK = ["task_options.target.steps=20", "task_options.attacker.queries=3000",
         "eval.samples=500", "eval.prior_samples=1000", "rounds.samples_per_round=40"]
#: A stand-in for use before the task ships its checkpoints: a target trained 3,000 steps on
#: value-uniform operands (mostly 5 digits), reading and writing digits reversed, and an attacker
#: trained on 100,000 queries (about 15 minutes of CPU); prior success rate about 1.5e-4, mostly
#: queries with leading zeros. Every option is pinned so that new task defaults do not move it.
STANDIN = ["task_options.operands=value", "task_options.target.steps=3000",
           "task_options.target.reverse_operands=true", "task_options.target.reverse_answer=true",
           "task_options.target.pad_operands=false", "task_options.attacker.queries=100000"]
#: Tuning files (benchmarks/results/<prefix>*.json) whose best settings the baselines use.
TUNING = {"standin": "tune_addition_standin", "shipped": "tune_addition_shipped"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=7500)
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--method-set", dest="method_sets", action="append", default=[],
                    metavar="METHOD:KEY=VALUE", help="added after the tuned settings")
    ap.add_argument("--out", default="runs/compare-addition", help="parent of the run directories")
    ap.add_argument("--name", default=None, help="results/<name>.json")
    ap.add_argument("--quick", action="store_true", help="tiny models and budget, for CI")
    ap.add_argument("--standin", action="store_true", help="the stand-in target and attacker")
    ap.add_argument("--tuning", default=None, help="prefix of the tuning results to use")
    args = ap.parse_args()
    files = tuning_files(args.tuning or TUNING["standin" if args.standin else "shipped"])
    if not files:
        print("no tuning results found: the baselines run with their default options")
    chosen = args.methods.split(",")
    tuned = method_sets({m: o for m, o in best_settings(files).items() if m in chosen})
    sets, budget, seeds, out = list(args.sets), args.budget, args.seeds, Path(args.out)
    if args.quick:
        sets, budget, seeds, out = QUICK + sets, 80, 2, out.with_name(out.name + "-quick")
    elif args.standin:
        sets, out = STANDIN + sets, out.with_name(out.name + "-standin")
    sets.append("trainer.num_threads=1")
    start = time.perf_counter()
    result = compare("addition-attack", args.methods.split(","), list(range(seeds)), out=out,
                     budget=budget, sets=sets, method_sets=tuned + args.method_sets, echo=print)
    print(result["markdown"])
    vs = result["vs_best_other"].get("banel")
    goal = None if vs is None or vs["ratio"] is None else vs["ratio"] >= 10
    if vs:
        print(f"banel {vs['improvement']:.3g}x, best baseline {vs['best_other']} "
              f"{vs['other_improvement']:.3g}x: ratio {vs['ratio']:.3g} (goal >= 10: {goal})")
    standin = args.standin and not args.quick
    name = args.name or ("compare_addition" + ("_standin" if standin else "")
                         + ("_quick" if args.quick else f"_b{budget}"))
    write(name, {"budget": budget, "seeds": seeds, "sets": sets,
                 "method_sets": tuned + args.method_sets, "tuning_files": files, "out": str(out),
                 "seconds": time.perf_counter() - start, "goal_met": goal,
                 **{k: v for k, v in result.items() if k not in ("markdown", "curves")}})


if __name__ == "__main__":
    main()
