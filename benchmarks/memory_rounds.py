"""Resident memory over the rounds of one run: the slope of metrics.csv's rss_mib, in MiB a round.

Runs `banel run` in a fresh process (BaNEL on addition-attack: a transformer failure model a
round, distillation when acceptance falls) and fits a least-squares line to the resident memory
recorded after each round, leaving out round 1 (the first Lightning fit's one-off allocations).
For scale it prints the size of one failure-model checkpoint: the regions of old rounds are
held in memory, so a slope near that size is the models themselves.

    python benchmarks/memory_rounds.py [--rounds 50] [--task addition-attack]
    python benchmarks/memory_rounds.py --quick         # 6 rounds on toy-1d, for the tests
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

BANEL = [sys.executable, "-m", "banel_framework.cli"]

#: Samples a round and other settings per task: small rounds, so that 50 take minutes, not hours.
SETTINGS = {
    "addition-attack": (50, ["--set", "banel.failure_model.fit.epochs=2",
                             "--set", "banel.posterior.calibrate=0.3",
                             "--set", "eval.every=10", "--set", "eval.samples=500",
                             "--set", "eval.prior_samples=2000", "--set", "eval.final_samples=500",
                             "--set", "banel.distill.samples=1000"]),
    "toy-1d": (5, ["--set", "banel.posterior.filter_factor=1.0"]),
}


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys on xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0


def measure(task: str, rounds: int, seed: int, out: Path) -> dict:
    per_round, sets = SETTINGS[task]
    budget = rounds * per_round
    start = time.time()
    proc = subprocess.run(BANEL + ["run", "--task", task, "--out", str(out), "-q", "--seed",
                                   str(seed), "--budget", str(budget), "--set",
                                   f"rounds.max_rounds={rounds}", "--set",
                                   f"rounds.samples_per_round={per_round}", *sets],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"banel run failed:\n{proc.stderr[-2000:]}")
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    rss = [(int(r["round"]), float(r["rss_mib"])) for r in rows if r.get("rss_mib")]
    steady = rss[1:] if len(rss) > 2 else rss
    ckpts = sorted((out / "checkpoints").glob("failure_model_r*.pt"))
    return {
        "task": task, "rounds": len(rows), "seed": seed, "seconds": time.time() - start,
        "rss_mib": [m for _, m in rss],
        "slope_mib_per_round": slope([r for r, _ in steady], [m for _, m in steady]),
        "growth_mib": steady[-1][1] - steady[0][1] if steady else None,
        "failure_model_mib": ckpts[0].stat().st_size / 2**20 if ckpts else None,
        "distilled_rounds": sum(r.get("distilled") == "True" for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="addition-attack", choices=sorted(SETTINGS))
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.task, args.rounds = "toy-1d", 6
    with tempfile.TemporaryDirectory() as tmp:
        res = measure(args.task, args.rounds, args.seed, Path(tmp) / "run")
    print(f"{res['task']}: {res['rounds']} rounds in {res['seconds']:.0f} s; resident memory "
          f"{res['rss_mib'][0]:.0f} MiB after round 1, {res['rss_mib'][-1]:.0f} MiB after round "
          f"{res['rounds']}; slope after round 1: {res['slope_mib_per_round']:+.2f} MiB a round "
          f"(one failure model: {res['failure_model_mib'] or 0:.2f} MiB on disk; "
          f"{res['distilled_rounds']} rounds distilled)")
    write("memory_rounds" + ("_quick" if args.quick else f"_{args.task}"), res)


if __name__ == "__main__":
    main()
