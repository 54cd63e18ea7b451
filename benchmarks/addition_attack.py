"""BaNEL on addition-attack over several seeds: the paper's table (mean, median, std, gain).

Each seed is a normal run directory (resumable; rerunning skips finished seeds). Prints per-round
figures (acceptance, proposals/s, failure-model fit time) and the table, and writes JSON.

  python benchmarks/addition_attack.py --seeds 5 --budget 7500          # the reproduction
  python benchmarks/addition_attack.py --seeds 5 --no-leading-zeros      # the harder variant
  python benchmarks/addition_attack.py --quick                           # tiny, for CI
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path
from typing import Any

from common import parallel, write

from banel_framework.config import parse_overrides
from banel_framework.run import create_run, open_run, plan
from banel_framework.runner import execute

QUICK = ["task_options.target.steps=20", "task_options.attacker.queries=3000",
         "eval.final_samples=400", "banel.distill.samples=300", "banel.distill.fit.epochs=1",
         "eval.samples=200", "eval.prior_samples=400", "rounds.samples_per_round=40",
         "rounds.draw_batch_size=256"]


def run_seed(out: Path, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Run (or resume, or read) one seed's run directory; returns its summary."""
    if (out / "summary.json").exists():
        s = json.loads((out / "summary.json").read_text())
        if s["nre_used"] >= s["nre_budget"] or s.get("stop_reason", "").startswith("no new"):
            return s
    run = open_run(out) if (out / "ledger.sqlite").exists() else create_run(plan(layers), out)
    return execute(run)


def table(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, median and std of the final success rate over seeds, and the gain over the prior."""
    finals = [s["eval"]["final"]["rate"] for s in summaries]
    priors = [s["eval"]["prior"]["rate"] for s in summaries]
    best = [s["eval"]["best"]["rate"] for s in summaries if s["eval"]["best"]]
    prior = statistics.mean(priors)
    out = {"seeds": len(summaries), "prior_mean": prior,
           "final_mean": statistics.mean(finals), "final_median": statistics.median(finals),
           "final_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
           "best_mean": statistics.mean(best) if best else None,
           "improvements": [s["improvement"] for s in summaries],
           # success rate among final samples the ledger had not seen (None: not measured)
           "novel_rates": [s["eval"]["final"].get("novel_rate") for s in summaries],
           "known_shares": [1 - s["eval"]["final"]["novel_n"] / s["eval"]["final"]["n"]
                            if s["eval"]["final"].get("novel_n") is not None else None
                            for s in summaries],
           # distinct successes the run's NREs found (the ledger's solutions)
           "found": [s["solutions_found"] for s in summaries],
           # distinct successful queries among the final samples, and those not in the ledger
           "final_distinct": [s["eval"]["final"].get("distinct_k") for s in summaries],
           "final_distinct_new": [s["eval"]["final"].get("novel_distinct_k") for s in summaries]}
    out["found_mean"] = statistics.mean(out["found"])
    out["improvement_of_mean"] = out["final_mean"] / prior if prior > 0 else None
    novel = [r for r in out["novel_rates"] if r is not None]
    out["novel_mean"] = statistics.mean(novel) if len(novel) == len(finals) else None
    out["novel_improvement_of_mean"] = (out["novel_mean"] / prior
                                        if out["novel_mean"] is not None and prior > 0 else None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed-list", default=None, metavar="3,10,12",
                    help="these seeds instead of 0..seeds-1")
    ap.add_argument("--budget", type=int, default=7500)
    ap.add_argument("--no-leading-zeros", action="store_true", help="the harder variant")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="runs/bench-addition", help="parent of the run directories")
    ap.add_argument("--name", default=None, help="results/<name>.json")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run side by side, one thread each")
    ap.add_argument("--quick", action="store_true", help="tiny models and budget, for CI")
    args = ap.parse_args()
    sets = list(args.sets)
    budget, seeds = args.budget, args.seeds
    if args.quick:
        sets = QUICK + sets
        budget, seeds = 80, 2
    seed_ids = [int(x) for x in args.seed_list.split(",")] if args.seed_list else range(seeds)
    if args.no_leading_zeros:
        sets.append("task_options.allow_leading_zeros=false")
    variant = "no-lz" if args.no_leading_zeros else "lz"
    root = Path(args.out) / (("quick-" if args.quick else "") + variant)
    calls = [(root / f"seed{seed}",
              [{"task": "addition-attack", "seed": seed, "budget": budget, "progress": False,
                "trainer": {"num_threads": 1} if args.jobs > 1 else {}},
               parse_overrides(sets)]) for seed in seed_ids]
    start = time.perf_counter()
    summaries = parallel(run_seed, calls, args.jobs)
    per_round = []
    for seed, s in zip(seed_ids, summaries):
        ev = s["eval"]
        print(f"seed {seed}: prior {ev['prior']['rate']:.2e}, final {ev['final']['rate']:.4f} "
              f"{[round(x, 4) for x in ev['final']['ci']]}, best {ev['best']['rate'] if ev['best'] else None}, "
              f"improvement {s['improvement']}, {s['solutions_found']} successes found, "
              f"{s['wall_seconds']:.0f}s"
              + (f", rate among samples not in the ledger {ev['final']['novel_rate']:.4f}"
                 if ev["final"].get("novel_rate") is not None else ""))
        with open(root / f"seed{seed}" / "metrics.csv") as fh:
            for row in csv.DictReader(fh):
                per_round.append({"seed": seed, **row})
                print(f"   round {row['round']:>2}: NREs {row['nre_after']:>5} acceptance "
                      f"{row['acceptance']:>9} proposals/s {row['proposals_per_second']:>9} "
                      f"accepted/s {row['accepted_per_second']:>9} phi fit {row['phi_seconds']:>7}s "
                      f"rate {row['eval_rate']:>9} ok {row['successes']}")
    print(f"{len(summaries)} seeds in {time.perf_counter() - start:.0f}s with {args.jobs} job(s)")
    t = table(summaries)
    print(f"\n{'method':>10} {'mean':>9} {'median':>9} {'std':>9} {'gain':>8}")
    print(f"{'prior':>10} {t['prior_mean']:>9.2e}")
    print(f"{'banel':>10} {t['final_mean']:>9.4f} {t['final_median']:>9.4f} {t['final_std']:>9.4f} "
          f"{t['improvement_of_mean'] or 0:>7.1f}x")
    if t["novel_mean"] is not None:
        print(f"{'new only':>10} {t['novel_mean']:>9.4f} {'':>9} {'':>9} "
              f"{t['novel_improvement_of_mean'] or 0:>7.1f}x   (samples not already in the ledger)")
    print(f"successes found in the budget per seed: {t['found']} (mean {t['found_mean']:.1f})")
    print(f"distinct successes among the final samples per seed: {t['final_distinct']} "
          f"(not in the ledger: {t['final_distinct_new']})")
    write(args.name or f"addition_attack_{variant}" + ("_quick" if args.quick else ""),
          {"args": vars(args), "table": t, "summaries": summaries, "rounds": per_round})


if __name__ == "__main__":
    main()
