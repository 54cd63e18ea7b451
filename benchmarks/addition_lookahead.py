"""The shipped target's failure mode without leading zeros: looking ahead through a propagate run.

The target writes the sum from its first digit, so each digit needs to know the carry from
below. Where the operands' digits sum to 9 a carry passes straight through, and a run of k such
positions asks the target to look k digits ahead ("7+6993=": 6000; "0+7999=": 8999). This
script measures the target's error by the longest propagate run (`propagate_run`):

1. on draws of the no-leading-zero attacker prior: each class's share of the prior, its error
   and its share of the prior's successes, and the gain of a posterior that drew only that
   class (its error over the prior's rate);
2. on queries built with a run of each length (a carry into the run or not), where the prior
   seldom goes;
3. with --runs, each run directory's NREs by round, and pooled by thirds of the rounds: does a
   run's drift move towards the runs? (--drift-only: this part alone, in seconds)

  python benchmarks/addition_lookahead.py [--prior-draws 200000] [--per-class 4000] \\
      [--runs runs/nolz-fo/no-lz/seed*] [--drift-only] [--set KEY=VALUE ...] [--quick]
"""

from __future__ import annotations

import argparse
import collections
import random
import time
from pathlib import Path

import torch
from banel_tasks.addition import QueryCodec
from banel_tasks.addition.arith import parse, propagate_run
from common import write

from banel_framework.config import parse_overrides
from banel_framework.evaluation import clopper_pearson
from banel_framework.ledger import Ledger
from banel_framework.run import LEDGER_FILE, plan, task_context
from banel_framework.samples import Samples


def built(la: int, lb: int, k: int, carry_in: bool, rng: random.Random) -> tuple[int, int]:
    """Operands of la and lb digits (no leading zero) whose longest propagate run is exactly k,
    with a carry into that run or not; a missing digit counts as 0."""
    length = max(la, lb)
    # a carry is made (digits summing to 10 or more) only where both operands have a digit
    last = min(la, lb, length - k) if carry_in else length - k
    start = rng.randrange(int(carry_in), last + 1)
    a = b = 0
    for i in range(length):
        lo_a = 1 if i == la - 1 and la > 1 else 0
        lo_b = 1 if i == lb - 1 and lb > 1 else 0
        for _ in range(1000):
            x = rng.randrange(lo_a, 10) if i < la else 0
            y = rng.randrange(lo_b, 10) if i < lb else 0
            s = x + y
            if start <= i < start + k:
                ok = s == 9
            elif carry_in and i == start - 1:
                ok = s >= 10
            elif not carry_in and k and i == start - 1:
                ok = s <= 8
            else:
                ok = s != 9
            if ok:
                break
        else:
            raise ValueError(f"no digits for {la}+{lb}, run {k} at {start}, carry {carry_in}")
        a, b = a + x * 10 ** i, b + y * 10 ** i
    return a, b


def classes_from(pairs, rewards) -> dict[int, list[int]]:
    """{longest propagate run: [queries, wrong]}."""
    out = collections.defaultdict(lambda: [0, 0])
    for (a, b), r in zip(pairs, rewards):
        c = out[propagate_run(a, b)]
        c[0] += 1
        c[1] += int(r)
    return dict(sorted(out.items()))


def prior_classes(task, ctx, oracle, draws: int, seed: int) -> dict:
    """The prior's draws by propagate run: share, error, share of its successes."""
    codec = QueryCodec()
    texts = codec.decode_batch(task.prior(ctx).sample(draws, seed=seed))
    valid = [t for t in texts if task.valid(t)]
    rewards = oracle(Samples.from_sequences(codec.encode(t) for t in valid), valid)
    o = task.options
    pairs = [parse(t, o.longest_valid_operand, o.allow_leading_zeros) for t in valid]
    by_run = classes_from(pairs, rewards)
    wins = int(sum(rewards))
    rate = wins / draws
    rows = []
    for k in by_run:
        n = sum(v[0] for j, v in by_run.items() if j >= k)
        w = sum(v[1] for j, v in by_run.items() if j >= k)
        lo, hi = clopper_pearson(w, n)
        rows.append({"at_least": k, "share_of_draws": n / draws, "queries": n, "wrong": w,
                     "error": w / n, "ci": [lo, hi], "share_of_successes": w / max(wins, 1),
                     "gain_bound": w / n / rate if rate else None})
    return {"draws": draws, "valid": len(valid), "successes": wins, "rate": rate,
            "by_run": {str(k): v for k, v in by_run.items()}, "at_least": rows}


def built_classes(oracle, max_digits: int, per_class: int, rng: random.Random) -> list[dict]:
    """Built queries: error by exact run length and carry into the run."""
    codec, rows = QueryCodec(), []
    for k in range(max_digits + 1):
        for carry_in in (False, True):
            lengths = [(la, lb) for la in range(1, max_digits + 1)
                       for lb in range(1, max_digits + 1) if max(la, lb) >= k + int(carry_in)]
            if not lengths or (carry_in and k == 0):
                continue
            pairs = [built(*rng.choice(lengths), k, carry_in, rng) for _ in range(per_class)]
            assert all(propagate_run(a, b) == k for a, b in pairs)
            texts = [f"{a}+{b}=" for a, b in pairs]
            w = int(sum(oracle(Samples.from_sequences(codec.encode(t) for t in texts), texts)))
            lo, hi = clopper_pearson(w, per_class)
            rows.append({"run": k, "carry_in": carry_in, "queries": per_class, "wrong": w,
                         "error": w / per_class, "ci": [lo, hi]})
    return rows


def drift(run_dirs: list[Path], max_digits: int) -> list[dict]:
    """Per round, over the run directories: the share of valid NREs with a run of 2+ and 3+."""
    n, r2, r3, wins = (collections.Counter() for _ in range(4))
    for d in run_dirs:
        ledger = Ledger(d / LEDGER_FILE, existing=True)
        for e in ledger.evaluations(status="done"):
            p = parse(e.text, max_digits, False)
            if p is None:
                continue
            k = propagate_run(*p)
            n[e.round] += 1
            r2[e.round] += k >= 2
            r3[e.round] += k >= 3
            wins[e.round] += int(e.reward or 0)
        ledger.close()
    return [{"round": r, "valid_nres": n[r], "run_2_plus": r2[r] / n[r], "run_3_plus": r3[r] / n[r],
             "successes": wins[r]} for r in sorted(n)]


def thirds(trend: list[dict]) -> list[dict]:
    """The per-round drift pooled over the first, middle and last third of the rounds."""
    if not trend:
        return []
    last = trend[-1]["round"]
    cuts = [(1, last // 3), (last // 3 + 1, 2 * last // 3), (2 * last // 3 + 1, last)]
    out = []
    for lo, hi in cuts:
        rows = [r for r in trend if lo <= r["round"] <= hi]
        n = sum(r["valid_nres"] for r in rows)
        if not n:
            continue
        out.append({"rounds": [lo, hi], "valid_nres": n,
                    "run_2_plus": sum(r["run_2_plus"] * r["valid_nres"] for r in rows) / n,
                    "run_3_plus": sum(r["run_3_plus"] * r["valid_nres"] for r in rows) / n,
                    "successes": sum(r["successes"] for r in rows)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prior-draws", type=int, default=200_000)
    ap.add_argument("--per-class", type=int, default=4000, help="built queries per class")
    ap.add_argument("--runs", nargs="*", type=Path, default=[],
                    help="run directories (leading zeros disallowed) whose NREs to classify")
    ap.add_argument("--drift-only", action="store_true",
                    help="only classify the --runs' NREs (no target, no prior draws)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a task option as on `banel run` (task_options.max_digits=8)")
    ap.add_argument("--name", default="addition_lookahead")
    ap.add_argument("--quick", action="store_true", help="tiny target and sample, for CI")
    args = ap.parse_args()
    if args.drift_only and not args.runs:
        ap.error("--drift-only needs --runs DIR ...")
    torch.set_num_threads(1)
    sets = {"task": "addition-attack", "progress": False,
            "task_options": {"allow_leading_zeros": False}}
    if args.quick:
        sets["task_options"].update({"target": {"steps": 20}, "attacker": {"queries": 2000}})
        args.prior_draws, args.per_class, args.name = 2000, 40, args.name + "_quick"
    p = plan([sets, parse_overrides(args.sets)])
    start = time.perf_counter()
    prior, rows = None, []
    if not args.drift_only:
        ctx = task_context(p, progress=False)
        oracle = p.task.oracle(ctx)
        prior = prior_classes(p.task, ctx, oracle, args.prior_draws, seed=0)
        print(f"prior: {prior['draws']} draws, {prior['valid']} valid, {prior['successes']} successes "
              f"(rate {prior['rate']:.2e})")
        for row in prior["at_least"]:
            bound = f"{row['gain_bound']:.0f}x" if row["gain_bound"] is not None else "-"
            print(f"  propagate run >= {row['at_least']}: {row['share_of_draws']:.2e} of the draws, "
                  f"error {row['wrong']}/{row['queries']} = {row['error']:.2e}, "
                  f"{row['share_of_successes']:.0%} of the successes, a posterior there: {bound}")
        rows = built_classes(oracle, p.task.options.max_digits, args.per_class, random.Random(0))
        for row in rows:
            print(f"  built, run {row['run']}, carry in {row['carry_in']!s:5}: {row['wrong']}/"
                  f"{row['queries']} = {row['error']:.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]")
    trend = drift(args.runs, p.task.options.max_digits) if args.runs else []
    for row in trend:
        print(f"  round {row['round']}: {row['valid_nres']} valid NREs, run 2+ "
              f"{row['run_2_plus']:.3f}, run 3+ {row['run_3_plus']:.4f}, {row['successes']} successes")
    pooled = thirds(trend)
    for row in pooled:
        print(f"  rounds {row['rounds'][0]}-{row['rounds'][1]}: {row['valid_nres']} valid NREs, run 2+ "
              f"{row['run_2_plus']:.2%}, run 3+ {row['run_3_plus']:.2%}, {row['successes']} successes")
    write(args.name, {"args": {**vars(args), "runs": [str(r) for r in args.runs]},
                      "seconds": time.perf_counter() - start, "prior": prior, "built": rows,
                      "drift": trend, "drift_thirds": pooled})


if __name__ == "__main__":
    main()
