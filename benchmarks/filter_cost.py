"""Cost of filtering proposals through k failure models against k batched forward passes.

The posterior sampler checks the most-rejecting region first and scores only the survivors,
so with rejection it should cost less than k full passes; with none it should cost no more
than about that (goal: within 1.5x). Run: python benchmarks/filter_cost.py [--quick]
"""

from __future__ import annotations

import argparse

import torch
from banel_plugins.posterior_scorers import RatioScorer
from banel_plugins.transformer import TransformerGenerator, TransformerOptions
from common import best_of, write

from banel_framework.config import PosteriorConfig, TrainerConfig
from banel_framework.posterior import Posterior, RejectionRegion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes for CI")
    args = ap.parse_args()
    n = 1024 if args.quick else 16384
    ks = [1, 4] if args.quick else [1, 2, 4, 8, 16]
    torch.manual_seed(0)
    opts = TransformerOptions(vocab_size=13, eos_id=12, max_len=15, d_model=64, n_layers=2)
    prior = TransformerGenerator.build(opts, TrainerConfig(accelerator="cpu"))
    with torch.no_grad():
        prior.module.head.bias[12] = 1.0  # sequences end at realistic lengths
    batch = prior.sample(n, seed=1)
    rows = []
    for f, label in ((1e9, "no rejection"), (1.0, "rejection")):
        scorer = RatioScorer(PosteriorConfig(filter_factor=f))
        for k in ks:
            phis = []
            for i in range(k):
                phi = prior.clone()
                with torch.no_grad():
                    for p in phi.module.parameters():
                        p.add_(torch.randn_like(p) * 0.02, alpha=1.0)
                phis.append(phi)
            post = Posterior(prior, prior, scorer, [RejectionRegion(i, phi, prior)
                                                    for i, phi in enumerate(phis)])
            t_filter = best_of(lambda: post.reject_mask(batch))
            t_passes = best_of(lambda: [phi.log_prob(batch) for phi in phis])
            rejected, _ = post.reject_mask(batch)
            row = {"case": label, "k": k, "proposals": n, "filter_seconds": t_filter,
                   "k_passes_seconds": t_passes, "ratio": t_filter / t_passes,
                   "rejected_share": float(rejected.float().mean()),
                   "proposals_per_second": n / t_filter}
            rows.append(row)
            print(f"{label:>13} k={k:>2}: filter {t_filter:.3f}s, {k} passes {t_passes:.3f}s, "
                  f"ratio {row['ratio']:.2f}, rejected {row['rejected_share']:.2f}, "
                  f"{row['proposals_per_second']:.0f} proposals/s")
    worst = max(r["ratio"] for r in rows)
    print(f"worst ratio filter/k-passes: {worst:.2f} (goal: <= 1.5)")
    write("filter_cost" + ("_quick" if args.quick else ""), {"rows": rows, "worst_ratio": worst})


if __name__ == "__main__":
    main()
