"""How far a posterior can rise without leading zeros: the target's error by query class.

Without leading zeros the shipped target fails on carries (addition_lookahead.py reads the same
failures more finely, by the run of digits summing to 9 that a carry passes through). A posterior
that learned nothing finer than a class (operand lengths, longest carry chain) could at best
move all its mass into the class the target gets wrong most often; that class's error over the
prior's rate bounds such a posterior's gain. Queries are built digit by digit so that every
chain length is well covered (a carry is forced at each position with probability q, q drawn
per query), then bucketed by the chain they have.

  python benchmarks/addition_ceiling.py [--per-pair 8000] [--quick]
"""

from __future__ import annotations

import argparse
import collections
import random
import time

from banel_tasks.addition import QueryCodec
from banel_tasks.addition.arith import carry_chain
from common import write

from banel_framework.evaluation import clopper_pearson
from banel_framework.samples import Samples
from banel_framework.run import plan, task_context

#: The prior's success rate with leading zeros disallowed (seeds 0-4 of
#: benchmarks/results/addition_attack_no-lz_failures_only_e5.json, 100,000 samples each).
PRIOR_NO_LZ = 3.88e-4


#: The sum growing a digit next to a one-digit operand: every query of each family (d+e >= 10).
FAMILIES = {name: [pattern.format(d=d, e=e) for d in range(1, 10) for e in range(10) if d + e >= 10]
            for name, pattern in {"d+9999e": "{d}+9999{e}=", "9999e+d": "9999{e}+{d}=",
                                  "d+999e": "{d}+999{e}=", "999e+d": "999{e}+{d}="}.items()}


def operands(la: int, lb: int, q: float, rng: random.Random) -> tuple[int, int]:
    """Operands of la and lb digits (no leading zero), a carry forced at each position w.p. q."""
    a, b, carry = [], [], 0
    for i in range(max(la, lb)):
        want = rng.random() < q
        for _ in range(100):
            x = rng.randrange(1 if i == la - 1 else 0, 10) if i < la else 0
            y = rng.randrange(1 if i == lb - 1 else 0, 10) if i < lb else 0
            if (x + y + carry >= 10) == want:
                break
        a.append(x)
        b.append(y)
        carry = int(x + y + carry >= 10)
    num = lambda ds, n: int("".join(map(str, reversed(ds[:n]))))  # noqa: E731
    return num(a, la), num(b, lb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-pair", type=int, default=8000, help="queries per pair of lengths")
    ap.add_argument("--min-n", type=int, default=500, help="smallest class reported")
    ap.add_argument("--quick", action="store_true", help="tiny target and sample, for CI")
    args = ap.parse_args()
    sets = {"task": "addition-attack", "progress": False,
            "task_options": {"allow_leading_zeros": False}}
    if args.quick:
        sets["task_options"].update({"target": {"steps": 20}, "attacker": {"queries": 2000}})
        args.per_pair, args.min_n = 40, 5
    p = plan([sets])
    ctx = task_context(p, progress=False)
    oracle = p.task.oracle(ctx)
    codec = QueryCodec()
    rng = random.Random(0)
    m = p.task.options.max_digits
    n_cls, e_cls = collections.Counter(), collections.Counter()
    start = time.perf_counter()
    for la in range(1, m + 1):
        for lb in range(1, m + 1):
            pairs = [operands(la, lb, rng.choice([0.1, 0.5, 0.8, 0.95]), rng)
                     for _ in range(args.per_pair)]
            texts = [f"{a}+{b}=" for a, b in pairs]
            rewards = oracle(Samples.from_sequences(codec.encode(t) for t in texts), texts)
            for (a, b), r in zip(pairs, rewards):
                key = (la, lb, carry_chain(a, b))
                n_cls[key] += 1
                e_cls[key] += r
    seconds = time.perf_counter() - start
    classes = []
    for key, n in n_cls.items():
        k = int(e_cls[key])
        lo, hi = clopper_pearson(k, n)
        classes.append({"lengths": list(key[:2]), "chain": key[2], "n": n, "wrong": k,
                        "error": k / n, "ci": [lo, hi], "gain_bound": k / n / PRIOR_NO_LZ})
    big = sorted((c for c in classes if c["n"] >= args.min_n), key=lambda c: -c["error"])
    by_chain = collections.defaultdict(lambda: [0, 0])
    for c in classes:
        by_chain[c["chain"]][0] += c["wrong"]
        by_chain[c["chain"]][1] += c["n"]
    print(f"{sum(n_cls.values())} queries in {seconds:.0f}s; prior (no leading zeros) {PRIOR_NO_LZ:.2e}")
    for ch, (k, n) in sorted(by_chain.items()):
        print(f"  carry chain {ch}: {k} / {n} = {k / n:.2e} ({k / n / PRIOR_NO_LZ:.1f}x the prior)")
    print(f"classes (operand lengths, chain) with at least {args.min_n} queries, worst first:")
    for c in big[:10]:
        print(f"  {c['lengths'][0]}+{c['lengths'][1]} digits, chain {c['chain']}: "
              f"{c['wrong']} / {c['n']} = {c['error']:.2e} [{c['ci'][0]:.2e}, {c['ci'][1]:.2e}]"
              f" -> at most {c['gain_bound']:.1f}x")
    prior, families = p.task.prior(ctx), {}
    for name, texts in FAMILIES.items():
        samples = Samples.from_sequences(codec.encode(t) for t in texts)
        mass = float(prior.log_prob(samples).exp().sum())
        wrong = int(sum(oracle(samples, texts)))
        families[name] = {"queries": len(texts), "wrong": wrong, "prior_mass": mass}
        print(f"  '{name}' (d+e >= 10): {wrong} of {len(texts)} wrong, prior mass {mass:.2e}")
    out = {"args": vars(args), "prior_no_lz": PRIOR_NO_LZ, "seconds": seconds,
           "families": families,
           "by_chain": {ch: v for ch, v in sorted(by_chain.items())},
           "classes": big, "ceiling": big[0]["gain_bound"] if big else None}
    write("addition_ceiling" + ("_quick" if args.quick else ""), out)


if __name__ == "__main__":
    main()
