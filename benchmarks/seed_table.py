"""Distinct successes a seed for several methods, read from their run directories (and, for
seeds that `banel compare` ran earlier, from its JSON): per seed, mean, median, a bootstrap
interval of the mean, and the NREs to the first success.

  python benchmarks/seed_table.py --name NAME "LABEL=SOURCE,SOURCE,..." ...

A SOURCE is a run directory (its summary.json) or RESULT.json:METHOD, the runs of METHOD in a
`banel compare` JSON under benchmarks/results. Writes results/NAME.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from common import RESULTS, write


def _from_run(d: Path) -> dict:
    s = json.loads((d / "summary.json").read_text())
    disc = s.get("discovery", {})
    return {"seed": s["seed"], "distinct": disc.get("distinct_successes"),
            "first": disc.get("nre_to_first_success"), "source": str(d)}


def _from_compare(spec: str) -> list[dict]:
    file, method = spec.rsplit(":", 1)
    path = Path(file) if Path(file).exists() else RESULTS / file
    runs = json.loads(path.read_text())["runs"]
    return [{"seed": r["seed"], "distinct": r.get("distinct_successes"),
             "first": r.get("nre_to_first_success"), "source": f"{path.name}:{method}"}
            for r in runs if r["method"] == method]


def row(label: str, sources: list[str], boot: int = 10_000) -> dict:
    """One method's seeds, sorted, with their statistics."""
    seeds: list[dict] = []
    for src in sources:
        seeds += _from_compare(src) if ".json:" in src else [_from_run(Path(src))]
    seeds.sort(key=lambda x: x["seed"])
    xs = np.array([x["distinct"] for x in seeds], dtype=float)
    rng = np.random.default_rng(0)
    means = rng.choice(xs, size=(boot, len(xs))).mean(axis=1)
    return {"label": label, "seeds": seeds, "mean": float(xs.mean()),
            "median": float(statistics.median(xs)), "std": float(xs.std(ddof=1)),
            "mean_ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", help="LABEL=SOURCE,SOURCE,...")
    ap.add_argument("--name", default=None, help="write results/<name>.json")
    args = ap.parse_args()
    rows = []
    for spec in args.rows:
        label, _, sources = spec.partition("=")
        rows.append(row(label, [s for s in sources.split(",") if s]))
    for r in rows:
        per = ", ".join(f"{x['seed']}: {x['distinct']}" for x in r["seeds"])
        lo, hi = r["mean_ci95"]
        print(f"{r['label']}: mean {r['mean']:.0f} [{lo:.0f}, {hi:.0f}], median "
              f"{r['median']:.0f}; {per}")
    if args.name:
        write(args.name, {"args": args.rows, "rows": rows})


if __name__ == "__main__":
    main()
