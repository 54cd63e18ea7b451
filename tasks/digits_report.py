"""Pictures of a digits run: prior samples, posterior by round, rejected proposals, solutions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from banel_plugins.banel import RoundState, replay
from banel_framework.posterior import Posterior
from banel_framework.samples import Samples
from banel_framework.seeding import derive_seed

from . import digits_data
from .digits_grid import save_grid, save_rows

if TYPE_CHECKING:  # pragma: no cover
    from banel_framework.run import Run

    from .digits import Digits0to6

PER_ROW = 16


def pick_rounds(states: list[RoundState], k: int = 6) -> list[RoundState]:
    """Up to `k` rounds evenly spread from the first to the last."""
    if len(states) <= k:
        return states
    step = (len(states) - 1) / (k - 1)
    return [states[round(i * step)] for i in range(k)]


def failure_scores(st: RoundState, run: Run, samples: Samples) -> torch.Tensor:
    """kappa * log p_phi(x) - log p_ref(x) of that round's failure model (high: failure-like)."""
    region = next(r for r in st.posterior.regions if r.round == st.round)
    log_ref = region.reference.log_prob(samples).double()
    log_phi = region.failure_model.log_prob(samples).double()
    return run.method.options.posterior.kappa * log_phi - log_ref


def rejected_rows(run: Run, states: list[RoundState], picked: list[RoundState], levels: int,
                  n: int = 512) -> list[tuple[str, np.ndarray]]:
    """Per round: fresh proposals its failure model rejects most strongly (highest score first)."""
    rows: list[tuple[str, np.ndarray]] = []
    threshold = float(np.log(run.method.options.posterior.filter_factor))
    used = {s.round: (states[i - 1].posterior.proposal if i else run.prior)
            for i, s in enumerate(states)}  # the proposal each round drew from
    for st in picked:
        if st.failure_model is None:
            continue
        props = used[st.round].sample(n, seed=derive_seed(run.config.seed, "report", st.round))
        score = failure_scores(st, run, props)
        order = torch.argsort(score, descending=True)
        top = order[score[order] > threshold][:PER_ROW]
        label = f"round {st.round}\n{int((score > threshold).sum())}/{n} rejected"
        rows.append((label, digits_data.images(props.select(top), levels)))
    return rows or [("no failure model", np.zeros((0, 8, 8)))]


def posterior_rows(run: Run, prior_post: Posterior, picked: list[RoundState], levels: int
                   ) -> list[tuple[str, np.ndarray]]:
    """Samples of the prior, then of the posterior after each picked round."""
    bc = run.config.rounds
    rows = []
    for label, post in [("prior", prior_post)] + [(f"after round {s.round}", s.posterior)
                                                  for s in picked]:
        res = post.draw(PER_ROW, seed=derive_seed(run.config.seed, "report", label),
                        batch_size=256, max_draws=min(bc.max_draws_per_round, 20_000))
        acc = f"\nacc {res.acceptance:.2g}" if post.regions else ""
        rows.append((label + acc, digits_data.images(res.samples, levels)))
    return rows


def solution_grid(run: Run, task: Digits0to6, path: Path) -> Path:
    """Every solution in the ledger, captioned with p(target) and the round it was found in."""
    sols = run.ledger.solutions()
    levels = task.options.levels
    samples = Samples.from_keys([s.key for s in sols])
    imgs = digits_data.images(samples, levels) if sols else np.zeros((0, 8, 8))
    proba = task.oracle(run.context).target_proba(samples) if sols else []
    caps = [f"r{s.round} {p:.2f}" for s, p in zip(sols, proba)]
    title = f"all {len(sols)} solutions (round, p({task.options.target}))"
    return save_grid(imgs, levels, path, title,
                     cols=PER_ROW, captions=caps, empty_note="no solution found")


def write_report(run: Run, task: Digits0to6, out_dir: Path) -> list[Path]:
    """The PNGs of a digits run (the posterior and rejection pictures only for BaNEL's)."""
    levels = task.options.levels
    prior = run.prior
    files = []
    prior_s = prior.sample(8 * PER_ROW, seed=derive_seed(run.config.seed, "report", "prior"))
    files.append(save_grid(digits_data.images(prior_s, levels), levels,
                           out_dir / "digits_prior.png",
                           f"prior samples ({task.name}; red: malformed sequence)"))
    states = list(replay(run))  # empty for a method without a posterior
    if states:
        picked = pick_rounds(states)
        base = Posterior(prior, prior, None, [], run.config.rounds.temperature)
        files.append(save_rows(posterior_rows(run, base, picked, levels), levels,
                               out_dir / "digits_posterior.png",
                               "posterior samples by round (acc: acceptance; red: malformed)"))
        files.append(save_rows(rejected_rows(run, states, picked, levels), levels,
                               out_dir / "digits_rejected.png",
                               "most failure-like proposals each round rejected "
                               "(highest kappa log p_phi - log p_ref first)"))
    files.append(solution_grid(run, task, out_dir / "digits_solutions.png"))
    return files
