"""The sparse suite: task variants where the prior expects at most 0.5 successes within the
budget, every method at its defaults on each (on toy-tail, the settings tuned on it), one table.

    python benchmarks/sparse_suite.py --seeds 3                      # every variant
    python benchmarks/sparse_suite.py --seeds 3 --variants toy-tail motif
    python benchmarks/sparse_suite.py --quick                        # tiny: the pipeline only

Each variant is one `banel compare` (resumable: rerun with the same --out to finish it). The
motif variant is the task of docs/writing-a-task-plugin.md, installed from the page. Prints and
writes benchmarks/results/sparse_suite.json (sparse_suite_quick.json with --quick): per variant
the prior's rate and the successes it expects within the budget (variants not rerun keep
their earlier figures in the file; each row records its own seeds), then per method the seeds
that found a success, the distinct successes, the NREs to the first and the final rate, and
whether the issue's goal (BaNEL finds a first success in twice as many seeds as the best other
method, and 3x its distinct successes) is met.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, write
from unseen_task import QUICK as MOTIF_QUICK
from unseen_task import install as install_motif

TOY_TAIL = ["task_options.low=-4", "task_options.high=5", "task_options.bins=180",
            "task_options.success_above=4.26"]

#: name -> task, budget, extra settings. Each prior rate is measured off-budget in the run.
VARIANTS = {
    # N(0, 1) over 180 bins on [-4, 5]; success at or above 4.26: exact prior rate about 1e-5
    # the baselines tuned on it (seeds 100-101, most distinct successes; grids in
    # benchmarks/results/tune_toy-tail_b100_*.json): tempered T = 20, the GA's alphabet from
    # 1,000,000 prior samples (2,000 never reach the tail), nsr lr 3, reinforce lr 0.1
    "toy-tail": {"task": "toy-1d", "budget": 100, "sets": TOY_TAIL + [
        "tempered.temperature=20", "ga.alphabet_samples=1000000", "nsr.lr=3",
        "nsr.batch_size=10", "reinforce.lr=0.1", "reinforce.batch_size=10"]},
    # BaNEL with the failure model that knows the bins are ordered (tasks/toy1d_kernel.py;
    # bandwidth 2 bins cut off at 3 bandwidths, chosen on seeds 100-101 from bandwidths 0.5-3
    # and reach 1, 2, 3 or none); its goal is read against toy-tail's others
    "toy-tail-ordinal": {"task": "toy-1d", "budget": 100, "methods": "banel",
                         "against": "toy-tail", "sets": TOY_TAIL + [
                             "banel.failure_model.name=ordinal-kernel",
                             "banel.failure_model.options.bandwidth=2",
                             "banel.failure_model.options.reach=3"]},
    # two rare transitions of a Markov chain: 1.5e-4 under the prior, 0.15 expected in 1,000
    "motif": {"task": "motif", "budget": 1000, "page": True,
              "sets": ["eval.final_samples=30000", "eval.every=100"]},
    # BaNEL with one-token mutations of its successes, adaptive share (addition-attack's
    # default since 2026-12-05); its goal is read against motif's others
    "motif-mutations": {"task": "motif", "budget": 1000, "page": True, "methods": "banel",
                        "against": "motif",
                        "sets": ["eval.final_samples=30000", "eval.every=100",
                                 "banel.explore_mutations=0.5", "banel.explore_adapt=true"]},
    # the arithmetic attack without leading zeros at 1,000 NREs: 3.9e-4, 0.39 expected
    "addition-no-lz": {"task": "addition-attack", "budget": 1000,
                       "sets": ["task_options.allow_leading_zeros=false",
                                "eval.final_samples=20000", "eval.every=100"]},
}
METHODS = "pretrained,banel,tempered,reinforce,rnd,count,nsr,w-reinforce,ga"


def run_variant(name: str, args: argparse.Namespace, root: Path, env: dict) -> dict:
    """One banel compare over the variant; its compare.json."""
    v = VARIANTS[name]
    sets = [f"trainer.num_threads={args.threads}", *v["sets"]]
    budget = v["budget"]
    if args.quick:
        budget = min(budget, 40)
        sets += ["eval.final_samples=2000", "eval.prior_samples=20000"]
        if v.get("page"):
            sets += MOTIF_QUICK
    out = root / name
    cmd = [sys.executable, "-m", "banel_framework.cli", "compare", "--task", v["task"],
           "--methods", v.get("methods", args.methods), "--seeds", str(args.seeds),
           "--budget", str(budget),
           "--out", str(out), "-q", *[x for s in sets for x in ("--set", s)]]
    subprocess.run(cmd, env=env, check=True)
    return json.loads((out / "compare.json").read_text())


def goal(rows: list[dict]) -> dict:
    """BaNEL against the best other method: seeds with a first success, distinct successes."""
    banel = next((r for r in rows if r["method"] == "banel"), None)
    others = [r for r in rows if r["method"] != "banel"]
    if banel is None or not others:
        return {}
    seeds = max(r["seeds_with_success"] for r in others)
    distinct = max(r["distinct_mean"] or 0 for r in others)
    return {"banel_seeds_with_success": banel["seeds_with_success"],
            "best_other_seeds_with_success": seeds,
            "banel_distinct": banel["distinct_mean"], "best_other_distinct": distinct,
            "met": banel["seeds_with_success"] >= 2 * max(seeds, 1)
            and (banel["distinct_mean"] or 0) >= 3 * max(distinct, 1e-9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--out", help="Parent of the comparisons (default: a temporary one).")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="One seed, 40 NREs, tiny models.")
    args = ap.parse_args()
    if args.quick:
        args.seeds = 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        env = dict(os.environ)
        if any(VARIANTS[v].get("page") for v in args.variants):
            site = install_motif(Path(tmp) / "motif")
            env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
        results = {}
        for name in args.variants:
            res = run_variant(name, args, root, env)
            prior = [p for p in (res.get("prior_rate_per_seed") or {}).values() if p is not None]
            rate = sum(prior) / len(prior) if prior else None
            budget = res["budget"]
            rows = [{k: r.get(k) for k in (
                "method", "seeds", "seeds_with_success", "distinct_mean", "distinct_ci",
                "nre_to_first_median", "final_mean", "novel_mean", "improvement")}
                for r in res["table"]]
            results[name] = {"task": VARIANTS[name]["task"], "budget": budget,
                             "prior_rate": rate,
                             "prior_expected_in_budget": rate * budget if rate else None,
                             "rows": rows, "goal": goal(rows)}
    out_name = "sparse_suite_quick" if args.quick else "sparse_suite"
    path = RESULTS / f"{out_name}.json"
    if not args.quick and path.exists():  # keep the variants not rerun this time
        results = {**json.loads(path.read_text()).get("variants", {}), **results}
    for vname, r in results.items():
        against = VARIANTS.get(vname, {}).get("against")
        if against in results:  # this variant's banel against the other variant's others
            others = [x for x in results[against]["rows"] if x["method"] != "banel"]
            r["goal"] = goal([x for x in r["rows"] if x["method"] == "banel"] + others)
    for name, r in results.items():
        exp = r["prior_expected_in_budget"]
        print(f"\n{name} ({r['task']}, {r['budget']} NREs): prior rate "
              f"{r['prior_rate'] or 0:.3g}, {exp or 0:.3g} successes expected in the budget")
        print("method        seeds with one  distinct (mean)  NREs to first  final rate")
        for row in r["rows"]:
            first = row["nre_to_first_median"]
            print(f"{row['method']:<13} {row['seeds_with_success']}/{row['seeds']:<13} "
                  f"{row['distinct_mean'] or 0:<16.3g} "
                  f"{'> budget' if first is None else first:<14} {row['final_mean'] or 0:.3g}")
        g = r["goal"]
        if g:
            print(f"goal (banel: 2x the seeds with a success, 3x the distinct successes of the "
                  f"best other): {'met' if g['met'] else 'NOT met'} "
                  f"({g['banel_seeds_with_success']} vs {g['best_other_seeds_with_success']} "
                  f"seeds; {g['banel_distinct']:.3g} vs {g['best_other_distinct']:.3g} distinct)")
    write(out_name,
          {"quick": args.quick, "seeds": args.seeds, "methods": args.methods.split(","),
           "variants": results})


if __name__ == "__main__":
    main()
