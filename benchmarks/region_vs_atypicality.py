"""Do a run's regions beat a plain atypicality filter at the same acceptance?

    python benchmarks/region_vs_atypicality.py RUN_DIR --draws DRAWS.pt [--m 50000]

Finds, for the draws file's successes and m of its prior samples, the first region of a finished
run (no distillation) that rejects each (curve.first_rejection), and compares, after every tenth
round, the gain of the regions with the gain of keeping only the samples whose prior
log-likelihood lies below the quantile that gives the same acceptance. DRAWS.pt is a file
written by `rate_curve.py --draws`.
Writes benchmarks/results/region_vs_atypicality_<name or run name>.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import write

from curve import first_rejection
from banel_plugins.banel import replay
from banel_framework.run import open_run
from banel_framework.samples import Samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--draws", required=True)
    ap.add_argument("--m", type=int, default=50_000)
    ap.add_argument("--name", help="results/region_vs_atypicality_<name>.json (default: run name)")
    args = ap.parse_args()
    run = open_run(args.run_dir)
    post = list(replay(run))[-1].posterior
    data = torch.load(args.draws, weights_only=True)
    succ, rest = Samples.from_keys(data["succ"]), Samples.from_keys(data["rest"][: args.m])
    th_s, th_r = post.prior.log_prob(succ).double(), post.prior.log_prob(rest).double()
    if post.proposal is post.prior:  # the samples carry their proposal log-likelihoods
        succ = Samples(succ.tokens, succ.lengths, th_s.float())
        rest = Samples(rest.tokens, rest.lengths, th_r.float())
    first_s = first_rejection(post.regions, post, succ)
    first_r = first_rejection(post.regions, post, rest)
    rounds = sorted(region.round for region in post.regions)
    rows = []
    for k in range(10, len(rounds) + 1, 10):  # kept by the first k regions: none rejects by then
        acc_r = (first_r > rounds[k - 1]).double().mean().item()
        kept = int((first_s > rounds[k - 1]).sum())
        q = torch.quantile(th_r, acc_r)
        a_kept, a_acc = int((th_s <= q).sum()), (th_r <= q).double().mean().item()
        row = {"regions": k, "acceptance": acc_r, "kept": kept,
               "gain": kept / len(succ) / acc_r if acc_r else None,
               "atypical_kept": a_kept, "atypical_gain": a_kept / len(succ) / a_acc if a_acc else None}
        rows.append(row)
        print(f"{k:3d} regions: acceptance {acc_r:.4f}, {kept} of {len(succ)} kept, gain "
              f"{row['gain']:.2f}x | atypicality filter: {a_kept} kept, gain {row['atypical_gain']:.2f}x")
    write(f"region_vs_atypicality_{args.name or Path(args.run_dir).name}", {
        "run_dir": args.run_dir, "draws": args.draws, "m": args.m, "rows": rows})


if __name__ == "__main__":
    main()
