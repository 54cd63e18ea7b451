"""The defaults on a task family no default was chosen on: the motif task of
docs/writing-a-task-plugin.md, installed from the page as a third-party package.

    python benchmarks/unseen_task.py                 # 3 seeds, 1,000 NREs, four methods
    python benchmarks/unseen_task.py --quick         # tiny prior and budget: the pipeline only

Runs `banel compare --task motif` (each method at its defaults, no flag) and writes
benchmarks/results/unseen_task_motif.json (unseen_task_quick.json with --quick) with the table;
also the prior's success rate at sampling temperatures 1, 1.3, 1.6 and 2, and among its least
likely 20%, 5% and 1% of samples (200,000 samples each; --quick: 2,000): the simplest ways to be
novel, beside which BaNEL's regions are judged.
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
from common import write

from banel_framework.testing import install_page

PAGE = Path(__file__).parent.parent / "docs" / "writing-a-task-plugin.md"
QUICK = ["task_options.sequences=300", "task_options.prior_epochs=2", "task_options.d_model=16",
         "eval.prior_samples=2000", "eval.final_samples=2000", "eval.samples=1000"]


def install(dest: Path) -> Path:
    """The page's package (its pyproject.toml and module), laid out as pip would."""
    return install_page(PAGE, dest, "motif_task", "register_tasks")


def prior_ceilings(env: dict, sets: list[str], n: int) -> dict:
    """The prior's motif rate at a few temperatures, and among its least likely samples (an
    atypicality filter keeping the lowest q of log p): the simplest ways to be novel."""
    code = f"""
import json, torch
from banel_framework.run import plan, task_context, user_layers
p = plan(user_layers(None, {sets!r}, task="motif"))
ctx = task_context(p, progress=False)
prior, codec, oracle = p.task.prior(ctx), p.task.codec(), p.task.eval_oracle(ctx)
temps, lps, hits = [], [], []
for t in (1.0, 1.3, 1.6, 2.0):
    k = 0
    for i in range(0, {n}, 10000):
        s = prior.sample(min(10000, {n} - i), seed=9000 + i, temperature=t)
        r = oracle(s, codec.decode_batch(s))
        k += int(sum(r))
        if t == 1.0:
            lps.append(s.log_prob); hits += r
    temps.append({{"temperature": t, "k": k, "n": {n}, "rate": k / {n}}})
lp, h = torch.cat(lps), torch.tensor(hits)
low = []
for q in (0.2, 0.05, 0.01):
    keep = lp <= torch.quantile(lp, q)
    low.append({{"lowest": q, "k": int(h[keep].sum()), "n": int(keep.sum()),
                "rate": float(h[keep].mean())}})
print(json.dumps({{"temperatures": temps, "least_likely": low}}))
"""
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default="pretrained,banel,tempered,reinforce")
    ap.add_argument("--out", help="Parent of the run directories (default: a temporary one).")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="Tiny prior, 60 NREs, one seed.")
    args = ap.parse_args()
    sets = [f"trainer.num_threads={args.threads}"] + (QUICK if args.quick else [])
    with tempfile.TemporaryDirectory() as tmp:
        site = install(Path(tmp))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
        out = Path(args.out) if args.out else Path(tmp) / "compare"
        cmd = [sys.executable, "-m", "banel_framework.cli", "compare", "--task", "motif",
               "--methods", args.methods, "--seeds", str(1 if args.quick else args.seeds),
               "--out", str(out), "-q", *[x for s in sets for x in ("--set", s)]]
        if args.quick:
            cmd += ["--budget", "60"]
        subprocess.run(cmd, env=env, check=True)
        result = json.loads((out / "compare.json").read_text())
        ceil = prior_ceilings(env, sets, 2000 if args.quick else 200_000)
        print((out / "compare_table.md").read_text())
    for t in ceil["temperatures"]:
        print(f"prior at temperature {t['temperature']}: {t['k']}/{t['n']} = {t['rate']:.3g}")
    for t in ceil["least_likely"]:
        print(f"prior's least likely {t['lowest']:.0%}: {t['k']}/{t['n']} = {t['rate']:.3g}")
    write("unseen_task_quick" if args.quick else "unseen_task_motif", {
        "task": "motif (docs/writing-a-task-plugin.md)", "quick": args.quick, "sets": sets,
        "methods": args.methods.split(","), "table": result["table"],
        "vs_best_other": result.get("vs_best_other"), "budget": result["budget"],
        "prior_at_temperatures": ceil["temperatures"], "least_likely": ceil["least_likely"],
    })


if __name__ == "__main__":
    main()
