"""The addition-attack target's error rate on the attacker prior's samples (its sparsity).

The issue asks for 1e-4..1e-3 on at least 100,000 samples. With --retrain, the target and the
attacker are pretrained from scratch into a fresh cache and timed (goal: under 15 minutes on
2 CPU cores), then compared with the shipped checkpoints.

  python benchmarks/addition_target.py [--samples 100000] [--retrain] [--quick]
                                      [--answer-check value|text] [--set KEY=VALUE ...]
                                      [--name NAME]

--set changes the task's options as on `banel run`, e.g. --set task_options.max_digits=8 for a
target and attacker on operands of up to eight digits (trained and cached on first use).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time

import torch
from banel_tasks.addition.arith import carry_chain, has_leading_zero, parse, propagate_run
from common import write

from banel_framework.config import parse_overrides
from banel_framework.evaluation import clopper_pearson
from banel_framework.run import plan, task_context


def measure(task, ctx, n: int, seed: int) -> dict:
    """Sample the prior, ask the target, and break errors down by carry chain and length."""
    prior = task.prior(ctx)
    oracle = task.oracle(ctx)
    start = time.perf_counter()
    samples = prior.sample(n, seed=seed)
    texts = task.codec().decode_batch(samples)
    rewards = oracle(samples, texts)
    seconds = time.perf_counter() - start
    k = int(sum(rewards))
    by_chain, err_chain = collections.Counter(), collections.Counter()
    by_run, err_run = collections.Counter(), collections.Counter()
    lz = lz_err = invalid = 0
    for t, r in zip(texts, rewards):
        p = parse(t, task.options.max_digits, True)
        if p is None:
            invalid += 1
            continue
        c = carry_chain(*p)
        by_chain[c] += 1
        err_chain[c] += r
        run = propagate_run(*p)
        by_run[run] += 1
        err_run[run] += r
        if any(has_leading_zero(x) for x in t[:-1].split("+")):
            lz += 1
            lz_err += r
    return {"samples": n, "successes": k, "rate": k / n, "ci": clopper_pearson(k, n),
            "invalid": invalid, "leading_zero_queries": lz, "leading_zero_successes": lz_err,
            "error_by_carry_chain": {c: [err_chain[c], by_chain[c]] for c in sorted(by_chain)},
            "error_by_run_summing_to_9": {j: [err_run[j], by_run[j]] for j in sorted(by_run)},
            "seconds": seconds, "queries_per_second": n / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--retrain", action="store_true", help="pretrain from scratch and time it")
    ap.add_argument("--quick", action="store_true", help="tiny pretraining and sample, for CI")
    ap.add_argument("--answer-check", choices=["value", "text"], default="text",
                    help="the task's answer_check (default: text, the task's): is '0694' right "
                    "for 694 (value) or not (text)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a task option as on `banel run` (task_options.max_digits=8)")
    ap.add_argument("--name", default=None, help="results/<name>.json")
    args = ap.parse_args()
    sets = {"task": "addition-attack", "progress": False,
            "task_options": {"answer_check": args.answer_check}}
    if args.quick:
        sets["task_options"].update({"target": {"steps": 20}, "attacker": {"queries": 2000}})
        args.samples, args.retrain = 2000, True
    p = plan([sets, parse_overrides(args.sets)])
    out = {"args": vars(args)}
    if args.retrain:
        with tempfile.TemporaryDirectory() as cache:
            ctx = task_context(p, progress=False)
            ctx.cache_dir = __import__("pathlib").Path(cache)
            start = time.perf_counter()
            p.task.target_model(ctx)
            t_target = time.perf_counter() - start
            p.task.prior(ctx)
            t_total = time.perf_counter() - start
            out["pretrain_seconds"] = {"target": t_target, "attacker": t_total - t_target,
                                       "total": t_total}
            print(f"pretraining: target {t_target:.0f}s, attacker {t_total - t_target:.0f}s, "
                  f"total {t_total:.0f}s ({torch.get_num_threads()} threads)")
            out["retrained"] = measure(p.task, ctx, args.samples, seed=123)
            r = out["retrained"]
            print(f"retrained target: error rate {r['rate']:.2e} {r['ci']} on {r['samples']}")
    if not args.quick:
        ctx = task_context(p, progress=False)
        out["shipped"] = m = measure(p.task, ctx, args.samples, seed=123)
        print(f"target error rate on {m['samples']} attacker samples: {m['rate']:.2e} "
              f"[{m['ci'][0]:.2e}, {m['ci'][1]:.2e}] ({m['successes']} wrong answers; "
              f"{m['queries_per_second']:.0f} queries/s)")
        for c, (e, n) in m["error_by_carry_chain"].items():
            print(f"  carry chain {c}: {e:.0f} / {n} = {e / max(n, 1):.2e}")
        for k, (e, n) in m["error_by_run_summing_to_9"].items():
            print(f"  longest run of digit pairs summing to 9 = {k}: {e:.0f} / {n} = "
                  f"{e / max(n, 1):.2e}")
        print(f"  leading-zero queries: {m['leading_zero_queries']}, "
              f"wrong on {m['leading_zero_successes']:.0f}")
    suffix = ("_text" if args.answer_check == "text" else "") + ("_quick" if args.quick else "")
    write(args.name or "addition_target" + suffix, out)


if __name__ == "__main__":
    main()
