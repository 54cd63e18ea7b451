"""How the addition-attack target answers queries with leading zeros, by how many zeros, and
how often the attacker prior writes them (longest operand in characters).

A target that reads its operands right-aligned in max_digits places sees one leading zero on a
short operand as a '0' in a pad position, and a longer operand (a zero in front of a
max_digits-digit number) at positions it never saw in training.

  python benchmarks/leading_zero_probe.py [--queries 2000] [--samples 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import collections
import random
import re

import torch
from banel_tasks.addition.arith import encode
from common import write

from banel_framework.run import plan, task_context


def target_errors(task, ctx, n: int, seed: int) -> list[dict]:
    """Error of the target on n queries of the training distribution with z = 1..4 zeros put in
    front of the first operand, the second, or both."""
    target = task.target_model(ctx)
    rng = random.Random(seed)
    top = task.options.max_digits

    def operand() -> int:
        k = rng.randint(1, top)
        return rng.randrange(0 if k == 1 else 10 ** (k - 1), 10 ** k)

    rows = []
    for zeros in range(1, 5):
        for where in ("first", "second", "both"):
            pairs = [(operand(), operand()) for _ in range(n)]
            texts = [("0" * zeros if where != "second" else "") + str(a) + "+"
                     + ("0" * zeros if where != "first" else "") + str(b) + "=" for a, b in pairs]
            answers = target.answer([encode(t) for t in texts])
            wrong = sum(not (x.isdigit() and int(x) == a + b) for x, (a, b) in zip(answers, pairs))
            as_text = sum(x != str(a + b) for x, (a, b) in zip(answers, pairs))
            widest = [max(len(p) for p in t[:-1].split("+")) for t in texts]
            longer = sum(w > top for w in widest)
            valid = [i for i, w in enumerate(widest) if w <= top]
            text_valid = sum(answers[i] != str(sum(pairs[i])) for i in valid)
            rows.append({"zeros": zeros, "where": where, "n": n, "error": wrong / n,
                         "error_as_text": as_text / n, "valid": len(valid),
                         "error_as_text_valid": text_valid / max(1, len(valid)),
                         "longer_than_max_digits": longer / n})
    return rows


def beside_lengths(task, ctx, n: int, seed: int) -> list[dict]:
    """Error as text with one zero in front of a 1..max_digits-1 digit second operand, by the
    first operand's length (does the zeroed operand set the answer's length?)."""
    target = task.target_model(ctx)
    rng = random.Random(seed)
    top = task.options.max_digits

    def operand(k: int) -> int:
        return rng.randrange(0 if k == 1 else 10 ** (k - 1), 10 ** k)

    rows = []
    for first in range(1, top + 1):
        pairs = [(operand(first), operand(rng.randint(1, top - 1))) for _ in range(n)]
        answers = target.answer([encode(f"{a}+0{b}=") for a, b in pairs])
        wrong = sum(x != str(a + b) for x, (a, b) in zip(answers, pairs))
        rows.append({"first_digits": first, "n": n, "error_as_text": wrong / n})
    return rows


def prior_shapes(task, ctx, n: int, seed: int) -> dict[str, int]:
    """Counts of the prior's samples by (leading zero?, longest operand in characters)."""
    prior, codec = task.prior(ctx), task.codec()
    pattern = re.compile(r"^(\d+)\+(\d+)=$")
    counts: collections.Counter[str] = collections.Counter()
    done = 0
    while done < n:
        size = min(100_000, n - done)
        for text in codec.decode_batch(prior.sample(size, seed=seed + done)):
            m = pattern.match(text)
            if not m:
                counts["malformed"] += 1
                continue
            lz = any(len(x) > 1 and x[0] == "0" for x in m.groups())
            counts[f"{'zeros' if lz else 'plain'}, {max(map(len, m.groups()))} chars"] += 1
        done += size
    return dict(sorted(counts.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=2000, help="target queries per row")
    ap.add_argument("--samples", type=int, default=1_000_000, help="prior samples")
    ap.add_argument("--quick", action="store_true", help="tiny models and counts, for CI")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sets = {"task": "addition-attack", "progress": False}
    if args.quick:
        sets["task_options"] = {"target": {"steps": 20}, "attacker": {"queries": 2000}}
        args.queries, args.samples = 50, 2000
    p = plan([sets])
    ctx = task_context(p, progress=False)
    rows = target_errors(p.task, ctx, args.queries, seed=0)
    for r in rows:
        place = "both operands" if r["where"] == "both" else f"the {r['where']} operand"
        print(f"{r['zeros']} zero(s) before {place}: error {r['error']:.3f}, as text "
              f"{r['error_as_text']:.3f} ({r['longer_than_max_digits']:.0%} of operands longer "
              f"than max_digits; as text on the {r['valid']} valid ones: "
              f"{r['error_as_text_valid']:.3f})")
    beside = beside_lengths(p.task, ctx, args.queries // 2, seed=1)
    for r in beside:
        print(f"one zero before the second operand, first operand of {r['first_digits']} "
              f"digit(s): error as text {r['error_as_text']:.3f}")
    shapes = prior_shapes(p.task, ctx, args.samples, seed=1000)
    print(f"prior, {args.samples} samples:")
    for k, v in shapes.items():
        print(f"  {k}: {v}")
    write("leading_zero_probe" + ("_quick" if args.quick else ""),
          {"args": vars(args), "target": rows, "beside": beside, "prior_shapes": shapes})


if __name__ == "__main__":
    main()
