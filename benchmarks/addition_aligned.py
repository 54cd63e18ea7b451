"""Would a failure model that reads the operands aligned by place value single out the successes?

Without leading zeros the shipped target errs where the operands' digits sum to 9 over a run
of places (addition_lookahead.py). A failures-only posterior moves towards what its failure
models, fitted on failures, find unlikely. This script asks, offline and on the attacker's own
draws, whether the most unlikely draws under such a model are where the target errs. It fits
each model on one set of prior draws (all but about 1 in 2,500 of which fail, so "fitted on the
failures"), ranks another set by how unlikely each draw is under it, and measures the target's
error on the most unlikely 0.1%-10%: the gain a posterior that drew only that slice would have.

The models, from what BaNEL's phi sees to the failure mode itself:
- `attacker`: -log p_theta, the attacker's own likelihood (phi is a fine-tune of it);
- `pair sums`: a first-order Markov chain over the aligned digit-pair sums (0-18, a missing
  digit 0), from the lowest place up: a failure model with place-aligned features;
- `pair digits`: the same chain over the aligned digit pairs themselves (100 states);
- `sums to 9`: a first-order chain over one bit a place, "the pair sums to 9" (the run itself:
  task knowledge of the target's failure, not something a generic model would find).

  python benchmarks/addition_aligned.py [--draws 200000] [--set KEY=VALUE ...] [--quick]
"""

from __future__ import annotations

import argparse
import collections
import math
import time

import torch
from banel_tasks.addition import QueryCodec
from banel_tasks.addition.arith import parse, propagate_run
from common import write

from banel_framework.config import parse_overrides
from banel_framework.evaluation import clopper_pearson
from banel_framework.run import plan, task_context
from banel_framework.samples import Samples

SLICES = (0.001, 0.005, 0.01, 0.05, 0.1)


def places(a: int, b: int) -> list[tuple[int, int]]:
    """The digit pairs from the lowest place up (a missing digit is 0)."""
    out = []
    while a or b or not out:
        out.append((a % 10, b % 10))
        a, b = a // 10, b // 10
    return out


FEATURES = {
    "pair sums": lambda pairs: [x + y for x, y in pairs],
    "pair digits": lambda pairs: [10 * x + y for x, y in pairs],
    "sums to 9": lambda pairs: [int(x + y == 9) for x, y in pairs],
}


class Chain:
    """A first-order Markov chain over a sequence of states, with a start and an end state."""

    def __init__(self, sequences: list[list[int]]):
        self.counts: dict = collections.defaultdict(collections.Counter)
        states = set()
        for seq in sequences:
            for prev, cur in zip(["^", *seq], [*seq, "$"]):
                self.counts[prev][cur] += 1
                states.add(cur)
        self.k = len(states)

    def log_prob(self, seq: list[int]) -> float:
        """Add-one smoothed log-likelihood."""
        lp = 0.0
        for prev, cur in zip(["^", *seq], [*seq, "$"]):
            c = self.counts[prev]
            lp += math.log((c[cur] + 1) / (sum(c.values()) + self.k))
        return lp


def draws(task, ctx, n: int, seed: int) -> tuple[list[str], list[float], list[tuple[int, int]]]:
    """n prior draws: the valid ones' texts, attacker log-likelihoods and operands."""
    codec, o = QueryCodec(), task.options
    s = task.prior(ctx).sample(n, seed=seed)
    texts, lps = codec.decode_batch(s), s.log_prob.tolist()
    keep = [(t, lp, parse(t, o.longest_valid_operand, o.allow_leading_zeros))
            for t, lp in zip(texts, lps) if task.valid(t)]
    return [k[0] for k in keep], [k[1] for k in keep], [k[2] for k in keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=200_000, help="prior draws to fit on, and to rank")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a task option as on `banel run`")
    ap.add_argument("--name", default="addition_aligned")
    ap.add_argument("--quick", action="store_true", help="tiny target and sample, for CI")
    args = ap.parse_args()
    torch.set_num_threads(1)
    layer = {"task": "addition-attack", "progress": False,
             "task_options": {"allow_leading_zeros": False}}
    if args.quick:
        layer["task_options"].update({"target": {"steps": 20}, "attacker": {"queries": 2000}})
        args.draws, args.name = 4000, args.name + "_quick"
    p = plan([layer, parse_overrides(args.sets)])
    ctx = task_context(p, progress=False)
    start = time.perf_counter()
    _, _, fit_pairs = draws(p.task, ctx, args.draws, seed=1)
    texts, theta, pairs = draws(p.task, ctx, args.draws, seed=0)
    codec = QueryCodec()
    wrong = [int(r) for r in p.task.oracle(ctx)(
        Samples.from_sequences(codec.encode(t) for t in texts), texts)]
    runs = [propagate_run(a, b) for a, b in pairs]
    base = sum(wrong) / len(wrong)
    print(f"{len(texts)} valid draws ranked (of {args.draws}), {sum(wrong)} wrong: error "
          f"{base:.2e}; fitted on {len(fit_pairs)} other valid draws")
    scores = {"attacker": [-x for x in theta]}  # higher: more unlikely
    for name, feature in FEATURES.items():
        chain = Chain([feature(places(a, b)) for a, b in fit_pairs])
        scores[name] = [-chain.log_prob(feature(places(a, b))) for a, b in pairs]
    rows = []
    for name, score in scores.items():
        order = sorted(range(len(texts)), key=lambda i: -score[i])
        for q in SLICES:
            top = order[:max(1, round(q * len(order)))]
            w = sum(wrong[i] for i in top)
            lo, hi = clopper_pearson(w, len(top))
            row = {"model": name, "slice": q, "queries": len(top), "wrong": w,
                   "error": w / len(top), "ci": [lo, hi],
                   "gain": w / len(top) / base if base else None,
                   "run_2_plus": sum(runs[i] >= 2 for i in top) / len(top),
                   "run_3_plus": sum(runs[i] >= 3 for i in top) / len(top)}
            rows.append(row)
            gain = f"{row['gain']:.1f}x" if row["gain"] is not None else "-"
            print(f"{name:>12}, most unlikely {q:>6.1%}: {w:>3}/{len(top):<6} wrong = "
                  f"{row['error']:.2e} [{lo:.1e}, {hi:.1e}] ({gain}); run 2+ "
                  f"{row['run_2_plus']:.1%}, run 3+ {row['run_3_plus']:.2%}")
    everything = {"run_2_plus": sum(r >= 2 for r in runs) / len(runs),
                  "run_3_plus": sum(r >= 3 for r in runs) / len(runs)}
    print(f"{'all draws':>12}: run 2+ {everything['run_2_plus']:.1%}, run 3+ "
          f"{everything['run_3_plus']:.2%}")
    write(args.name, {"args": vars(args), "seconds": time.perf_counter() - start,
                      "valid": len(texts), "wrong": sum(wrong), "error": base,
                      "all_draws": everything, "rows": rows})


if __name__ == "__main__":
    main()
