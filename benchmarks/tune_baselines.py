"""Tune the policy-gradient baselines as a fair user would: a small grid on held-out seeds.

The grid holds learning rate, batch size and baseline decay by default (any method option can
be added, e.g. beta for rnd and count; nested ones with dots, e.g.
"failure_model.options.bandwidth" for banel). Every setting runs as a normal run directory
(resumable; rerunning skips finished ones) on seeds that the comparison does not use (default
100, 101), and the best setting per method is the one with the highest mean final success
rate (with `--select distinct`: the most distinct successes found within the budget; `novel`:
the final rate on samples new to the ledger). With `--floor prior` only settings whose final
rate on every seed is at least the lower end of that seed's prior-rate interval compete (none
may end below pretrained); when none is left, all compete and the JSON says so. Writes
benchmarks/results/<name>.json; with `--extend` the rows already in that file are kept (their
settings are not rerun) and the best setting is chosen again over both grids.

  python benchmarks/tune_baselines.py --task addition-attack --budget 2000
  python benchmarks/tune_baselines.py --task toy-1d --budget 100 --quick
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

from common import RESULTS, write

from banel_framework.compare import run_one
from banel_framework.config import parse_overrides
from banel_framework.plugins import get_host

#: The default grid (any method option can be a key; each method uses the keys it has).
GRID = {"lr": [3e-4, 1e-3, 3e-3], "batch_size": [100], "baseline_decay": [0.0, 0.9]}
QUICK_GRID = {"lr": [0.03, 0.3], "batch_size": [10]}


def _mean(values: list[Any]) -> float:
    """Mean of the values that were measured (-1 when none was)."""
    got = [v for v in values if v is not None]
    return statistics.mean(got) if got else -1.0


#: What the best setting maximises: a key per row (ties broken by the final rate).
SELECT = {
    "final": lambda r: r["final_mean"],
    "novel": lambda r: (_mean(r.get("novel", [])), r["final_mean"]),
    "distinct": lambda r: (_mean(r.get("distinct", [])), r["final_mean"]),
}


def settings(method: str, grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's options that `method` has."""
    fields = getattr(get_host().registry.get("method", method).obj, "Options", None)
    keys = [k for k in grid if fields is not None and k.split(".")[0] in fields.model_fields]
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def nested(opts: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys ("failure_model.options.bandwidth") as nested sections."""
    out: dict[str, Any] = {}
    for key, value in opts.items():
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def name_of(opts: dict[str, Any]) -> str:
    return "-".join(f"{k.split('.')[-1]}{v:g}" if isinstance(v, (int, float)) else
                    f"{k.split('.')[-1]}{v}" for k, v in opts.items())


def _earlier(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The results file that `--extend` adds to, checked to be the same tuning."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"--extend: {path} does not exist")
    data = json.loads(path.read_text())
    same = {"task": args.task, "budget": args.budget, "sets": args.sets,
            "seeds": [int(s) for s in args.seeds.split(",")]}
    differ = [k for k, v in same.items() if data.get(k) != v]
    if differ:
        raise SystemExit(f"--extend: {path} was tuned with other {', '.join(differ)}")
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="addition-attack")
    ap.add_argument("--methods", default="reinforce,rnd,count")
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--seeds", default="100,101", help="held-out seeds, comma-separated")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--grid", default=None, help='JSON, e.g. {"lr": [1e-3], "batch_size": [100]}')
    ap.add_argument("--out", default=None, help="parent of the run directories")
    ap.add_argument("--name", default=None, help="results/<name>.json")
    ap.add_argument("--quick", action="store_true", help="a two-point grid")
    ap.add_argument("--select", choices=sorted(SELECT), default="final",
                    help="what the best setting maximises (ties: the final rate)")
    ap.add_argument("--floor", choices=["none", "prior"], default="none",
                    help="prior: only settings that end at or above the prior's rate on every "
                    "seed compete")
    ap.add_argument("--extend", action="store_true",
                    help="keep the rows of results/<name>.json and add this grid's settings")
    args = ap.parse_args()
    grid = json.loads(args.grid) if args.grid else (QUICK_GRID if args.quick else GRID)
    name = args.name or f"tune_{args.task}_b{args.budget}" + ("_quick" if args.quick else "")
    earlier = _earlier(name, args) if args.extend else None
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out or f"runs/tune-{args.task}-b{args.budget}")
    base = parse_overrides(args.sets + ["trainer.num_threads=1"])
    host, rows = get_host(), list(earlier["rows"]) if earlier else []
    done = {(r["method"], json.dumps(r["options"], sort_keys=True)) for r in rows}
    for method in args.methods.split(","):
        for opts in settings(method, grid):
            if (method, json.dumps(opts, sort_keys=True)) in done:
                continue
            start, finals, novel, distinct, prior_low = time.perf_counter(), [], [], [], []
            for seed in seeds:
                layers = [base, {"task": args.task, "method": method, "seed": seed,
                                 "budget": args.budget, "progress": False,
                                 method: nested(opts)}]
                s, _ = run_one(out / method / name_of(opts) / f"seed{seed}", layers, host, False)
                finals.append(s["eval"]["final"]["rate"])
                novel.append(s["eval"]["final"].get("novel_rate"))
                distinct.append(s.get("discovery", {}).get("distinct_successes"))
                prior = s["eval"].get("prior") or {}
                prior_low.append((prior.get("ci") or [prior.get("rate", 0.0)])[0])
            row = {"method": method, "options": opts, "finals": finals,
                   "final_mean": statistics.mean(finals), "novel": novel,
                   "distinct": distinct, "prior_low": prior_low,
                   "above_prior": all(f >= lo for f, lo in zip(finals, prior_low)),
                   "seconds": time.perf_counter() - start}
            rows.append(row)
            print(f"{method:9s} {name_of(opts):34s} final mean {row['final_mean']:.4g} "
                  f"({', '.join(f'{f:.3g}' for f in finals)}), distinct successes {distinct}",
                  flush=True)
    best, floor_met = {}, {}
    for m in dict.fromkeys(r["method"] for r in rows):  # an --extend'ed file's methods too
        mine = [r for r in rows if r["method"] == m]
        kept = [r for r in mine if r["above_prior"]] if args.floor == "prior" else mine
        floor_met[m] = bool(kept)
        if not kept:
            print(f"{m}: no setting ends at or above the prior on every seed; all compete")
        best[m] = max(kept or mine, key=SELECT[args.select])
    for m, r in best.items():
        print(f"best {m}: {r['options']} (final mean {r['final_mean']:.4g})")
    grids = (earlier.get("grids") or [earlier["grid"]]) + [grid] if earlier else [grid]
    write(name,
          {"task": args.task, "budget": args.budget, "seeds": seeds, "sets": args.sets,
           "grid": grid, "grids": grids, "select": args.select, "floor": args.floor,
           "floor_met": floor_met, "rows": rows,
           "best": {m: r["options"] for m, r in best.items()}})


if __name__ == "__main__":
    main()
