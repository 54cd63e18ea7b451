"""PNG plots of a run: success rate against NREs with its interval, acceptance per round."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _finite(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def success_plot(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> Path | None:
    """Posterior success rate after each round against NREs spent, with interval band."""
    pts = [r for r in rows if _finite(r.get("eval_rate"))]
    prior = (summary.get("eval") or {}).get("prior")
    if not pts and not prior:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    if pts:
        x = [r["nre_after"] for r in pts]
        y = [r["eval_rate"] for r in pts]
        ax.plot(x, y, marker="o", ms=3, label=f"{summary['method']} posterior")
        if not all(r.get("eval_exact") for r in pts):
            ax.fill_between(x, [r["eval_low"] for r in pts], [r["eval_high"] for r in pts],
                            alpha=0.25, label="95% CI")
    if prior and _finite(prior.get("rate")):
        ax.axhline(prior["rate"], color="grey", ls="--", label="prior")
    values = [v for r in pts for v in (r["eval_rate"], r.get("eval_low")) if _finite(v) and v > 0]
    if prior and _finite(prior.get("rate")) and prior["rate"] > 0:
        values.append(prior["rate"])
    if values and max(values) / max(min(values), 1e-300) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("NREs spent")
    ax.set_ylabel("success rate")
    ax.set_title(f"{summary['task']}: success rate (seed {summary['seed']})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def acceptance_plot(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> Path | None:
    """Acceptance rate of the posterior sampler per round, marking distillations."""
    pts = [r for r in rows if _finite(r.get("acceptance"))]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["round"] for r in pts], [r["acceptance"] for r in pts], marker="o", ms=3,
            label="acceptance (candidates drawn)")
    dist = [r for r in pts if r.get("distilled")]
    if dist:
        ax.scatter([r["round"] for r in dist], [r["acceptance"] for r in dist], marker="*",
                   s=90, color="C3", zorder=3, label="distilled after this round")
    if any(r["acceptance"] > 0 for r in pts):
        ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("acceptance rate")
    ax.set_title(f"{summary['task']}: posterior acceptance per round")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
