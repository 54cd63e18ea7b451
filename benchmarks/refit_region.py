"""What one round's region rejects, refitted with and without the known successes as counter-examples.

    python benchmarks/refit_region.py RUN_DIR --round 6 --draws DRAWS.pt [--weight 1] [--m 20000]

Refits the round's failure model from the prior on the round's negatives (same seed and
schedule as the run), once with no counter-examples and once with the ledger's successes up to
that round at weight -w, and prints the share of the prior (m samples of the draws file) and
of the file's successes each region rejects, with each known success's log p_phi / p_theta.
DRAWS.pt is a file written by `rate_curve.py --draws` for the same task and prior.
Writes benchmarks/results/refit_region_<run name>_r<round>.json.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import write

from banel_framework.run import open_run
from banel_framework.samples import Samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--round", type=int, required=True)
    ap.add_argument("--draws", required=True, help="rewarded proposals (rate_curve.py --draws)")
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--m", type=int, default=20_000)
    args = ap.parse_args()
    run = open_run(args.run_dir)
    r = args.round
    data = torch.load(args.draws, weights_only=True)
    succ, prior_s = Samples.from_keys(data["succ"]), Samples.from_keys(data["rest"][: args.m])
    neg = [e.key for e in run.ledger.evaluations(round_=r, status="done") if (e.reward or 0) <= 0]
    pos = [e.key for e in run.ledger.solutions() if e.round <= r]
    known = Samples.from_keys(pos) if pos else None
    th_s, th_p = run.prior.log_prob(succ).double(), run.prior.log_prob(prior_s).double()
    opts = run.method.options
    log_f = math.log(opts.posterior.filter_factor)
    rows = []
    for w in (0.0, args.weight):
        phi, _ = run.method.failure_builder.fit(
            run.prior, Samples.from_keys(neg), opts.failure_model.fit, from_scratch=False,
            seed=run.seed(r, "failure_model"), counter_examples=known, counter_weight=w)
        rej_p = float((phi.log_prob(prior_s).double() - th_p > log_f).double().mean())
        rej_s = float((phi.log_prob(succ).double() - th_s > log_f).double().mean())
        ratios = ((phi.log_prob(known) - run.prior.log_prob(known)).tolist() if known else [])
        rows.append({"weight": w, "rejects_prior": rej_p, "rejects_successes": rej_s,
                     "known_log_ratio": ratios})
        print(f"weight {w}: rejects {rej_p:.3f} of the prior, {rej_s:.3f} of the "
              f"{len(succ)} successes; known successes' log p_phi/p_theta "
              f"{[round(x, 1) for x in ratios]} (log f = {log_f:.2f})")
    write(f"refit_region_{Path(args.run_dir).name}_r{r:03d}", {
        "run_dir": args.run_dir, "round": r, "negatives": len(neg), "known_successes": len(pos),
        "m": args.m, "draws": args.draws, "rows": rows})


if __name__ == "__main__":
    main()
