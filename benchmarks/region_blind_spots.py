"""How often a BaNEL run's failure regions reject successes next to the ones it found: every
one-token substitution of the run's successes (the alphabet their tokens use) that the ledger has
not evaluated, or a random sample of them, scored by the final posterior's regions and
evaluated off-budget with the task's evaluation oracle.

  python benchmarks/region_blind_spots.py RUN_DIR... [--samples 3000] [--name NAME]

Prints, per run, the variants' success rate where the regions keep them and where they reject
them (a region that rejected only failures would show 0 there); on addition-attack also for
the variants with a leading zero. Writes results/NAME.json when --name is given.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from common import write

from banel_framework.run import open_run
from banel_framework.samples import Samples, key_sequence, sequence_key

LEADING_ZERO = re.compile(r"(^|\+)0\d")


def variants(known: list[str], is_known) -> list[tuple[int, ...]]:
    """Every one-token substitution of the successes, new to the ledger (final token kept)."""
    seqs = [tuple(key_sequence(k)) for k in known]
    alphabet = sorted({t for s in seqs for t in s[:-1]})
    out = set()
    for s in seqs:
        for i in range(len(s) - 1):
            for t in alphabet:
                if t != s[i]:
                    v = s[:i] + (t,) + s[i + 1:]
                    out.add(v)
    return sorted(v for v in out if not is_known(sequence_key(v)))


def blind_spots(run_dir: Path, samples: int, seed: int = 0) -> dict:
    """The run's success variants, split by the regions' verdict and by outcome."""
    run = open_run(run_dir)
    post = run.method.final_distribution(run)[1]
    known = [e.key for e in run.ledger.solutions()]
    cand = variants(known, run.ledger.is_known)
    if len(cand) > samples:
        cand = random.Random(seed).sample(cand, samples)
    head = {"run": str(run_dir), "distinct_successes": len(known), "variants": len(cand),
            "regions": len(post.regions)}
    if not cand:
        return {**head, "groups": {}}
    s = Samples.from_sequences([list(v) for v in cand])
    texts = [run.codec.decode(list(v)) for v in cand]
    rejected, _ = post.reject_mask(s)
    won = [r > 0 for r in run.task.eval_oracle(run.context)(s, texts)]
    rows: dict[str, dict[str, int]] = {}
    for text, rej, ok in zip(texts, rejected.tolist(), won):
        for group in ("all", "leading zero") if LEADING_ZERO.search(text) else ("all",):
            g = rows.setdefault(group, {"kept": 0, "kept_successes": 0, "rejected": 0,
                                        "rejected_successes": 0})
            side = "rejected" if rej else "kept"
            g[side] += 1
            g[side + "_successes"] += int(ok)
    return {**head, "groups": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--samples", type=int, default=3000, help="variants scored a run, at most")
    ap.add_argument("--name", default=None, help="results/<name>.json")
    args = ap.parse_args()
    out = []
    for d in args.runs:
        res = blind_spots(d, args.samples)
        out.append(res)
        print(f"{d}: {res['distinct_successes']} successes, {res['variants']} new variants, "
              f"{res['regions']} regions")
        for group, g in res["groups"].items():
            rate = lambda k, n: f"{k}/{n} = {k / n:.3f}" if n else "-"  # noqa: E731
            print(f"  {group:>12}: kept {rate(g['kept_successes'], g['kept'])} succeed, "
                  f"rejected {rate(g['rejected_successes'], g['rejected'])} succeed")
    if args.name:
        print(write(args.name, {"samples": args.samples, "runs": out}))


if __name__ == "__main__":
    main()
