"""What the attack found: leading zeros, carry chains and runs of digits summing to 9 among
successes, against the prior."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .arith import carry_chain, has_leading_zero, parse, propagate_run

if TYPE_CHECKING:  # pragma: no cover
    from banel_framework.run import Run

    from . import AdditionAttack


def describe(texts: list[str], max_digits: int) -> dict[str, Any]:
    """Share with leading zeros, and the histograms of the carry chain and of the longest run of
    digits summing to 9 (`propagate_run`), over the valid queries among `texts`."""
    parsed = [(t, parse(t, max_digits, True)) for t in texts]
    valid = [(t, p) for t, p in parsed if p is not None]
    lz = sum(1 for t, _ in valid if any(has_leading_zero(x) for x in t[:-1].split("+")))
    chains = Counter(carry_chain(a, b) for _, (a, b) in valid)
    runs = Counter(propagate_run(a, b) for _, (a, b) in valid)
    n = len(valid)
    share = lambda c: {str(k): v / n for k, v in sorted(c.items())} if n else {}  # noqa: E731
    return {"n": len(texts), "valid": n,
            "leading_zero_share": lz / n if n else None,
            "carry_chain": share(chains),
            "mean_carry_chain": (sum(k * v for k, v in chains.items()) / n) if n else None,
            "propagate_run": share(runs)}


def failure_modes(run: Run, task: AdditionAttack, out_dir: Path,
                  prior_samples: int = 20000) -> list[Path]:
    """failure_modes.json and a plot of carry chains and runs of digits summing to 9: successes
    found versus prior samples."""
    d = task.options.longest_valid_operand
    found = [s.text for s in run.ledger.solutions()]
    prior = run.prior.sample(prior_samples, seed=run.seed("report", "prior"))
    prior_texts = run.codec.decode_batch(prior)
    result = {"successes": describe(found, d), "prior": describe(prior_texts, d),
              "examples": found[:20]}
    json_path = out_dir / "failure_modes.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    width = 0.4
    for ax, key, xlabel in zip(axes, ("carry_chain", "propagate_run"),
                               ("longest carry chain", "longest run of digits summing to 9")):
        for i, (label, stats) in enumerate((("prior samples", result["prior"]),
                                            ("successful attacks", result["successes"]))):
            keys = [int(k) for k in stats[key]]
            ax.bar([k + (i - 0.5) * width for k in keys], list(stats[key].values()),
                   width=width, label=f"{label} (n={stats['valid']})")
        ax.set_xlabel(xlabel)
    lz = result["successes"]["leading_zero_share"]
    fig.suptitle(f"what the attacks found; leading zeros in {0 if lz is None else lz:.0%} of "
                 "successes", fontsize=10)
    axes[0].set_ylabel("share of valid queries")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    png = out_dir / "failure_modes.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return [json_path, png]
