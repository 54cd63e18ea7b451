"""The toy's picture in the style of the paper's figure: prior, failure model, posterior by round."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from banel_plugins.banel import replay

if TYPE_CHECKING:  # pragma: no cover
    from banel_framework.run import Run

    from .toy1d import Toy1d


def round_by_round(run: Run, task: Toy1d, path: Path, max_panels: int = 8) -> Path:
    """One panel a round (evenly chosen when there are many), over the bins."""
    support = task.support()
    codec = task.codec()
    x = [codec.centre(i) for i in range(task.options.bins)]
    prior = torch.softmax(run.prior.log_prob(support).double(), 0)
    states = list(replay(run))
    if len(states) > max_panels:
        step = (len(states) - 1) / (max_panels - 1)
        states = [states[round(i * step)] for i in range(max_panels)]
    n = max(1, len(states))
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.6 * n + 0.6), sharex=True, squeeze=False)
    th = task.options.success_above
    for ax, st in zip(axes[:, 0], states or [None]):
        ax.bar(x, prior.numpy(), width=x[1] - x[0], color="0.75", label="prior p_theta")
        if st is not None:
            if st.failure_model is not None:
                phi = torch.softmax(st.failure_model.log_prob(support).double(), 0)
                ax.plot(x, phi.numpy(), color="C3", lw=1.2, label="failure model p_phi")
            post = st.posterior.probabilities(support)
            ax.plot(x, post.numpy(), color="C0", lw=1.5, label="posterior")
            ax.set_ylabel(f"round {st.round}", fontsize=8)
        ax.axvspan(th, task.options.high, color="C2", alpha=0.12, label="success region")
        ax.set_yscale("log")
        ax.set_ylim(1e-6, 1.5)
    axes[0, 0].legend(fontsize=7, loc="upper left", ncol=2)
    axes[-1, 0].set_xlabel("x")
    fig.suptitle(f"{task.name}: prior, failure model and posterior, round by round", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
