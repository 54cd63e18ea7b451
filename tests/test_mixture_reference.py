"""banel.posterior.reference=mixture: the ratio's denominator is the proposals phi's data came from."""

import math

import torch
from banel_plugins.banel import load_generator, replay
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.mixture import WeightedMixture
from banel_framework.run import open_run

DISTIL = ["--set", "banel.distill.enabled=true", "--set", "banel.distill.acceptance_below=1.0",
          "--set", "banel.distill.samples=200"]
MIX = ["--set", "banel.posterior.reference=mixture", "--set", "banel.failure_model.data=all",
       *DISTIL]


def _run(out, budget, *flags):
    res = CliRunner().invoke(main, ["run", "--budget", str(budget), "-q", "--out", str(out),
                                    *flags])
    assert res.exit_code == 0, res.output
    return open_run(out)


def test_mixture_weights_each_rounds_proposal_by_its_negatives_and_resumes(tmp_path):
    run = _run(tmp_path / "whole", 40, *MIX)
    rounds = run.ledger.rounds()
    fitted = [(r, d) for r, _, d in rounds if d.get("failure_model")]
    assert len(fitted) >= 3
    for r, d in fitted:
        weights = d["reference_weights"]
        assert sum(weights.values()) == d["phi_samples"]
        assert set(weights) == {str(q) for q, _, _ in rounds if q <= r}
    # the last region's reference, rebuilt from the ledger, is sum_q w_q q_q(x) by hand
    last = list(replay(run))[-1]
    region = last.posterior.regions[-1]
    assert isinstance(region.reference, WeightedMixture)
    weights = dict(fitted)[region.round]["reference_weights"]
    total = sum(weights.values())
    xs = run.prior.sample(300, seed=5)
    parts, proposal = [], run.prior
    for q, _, d in rounds:
        if q > region.round:
            break
        parts.append(math.log(weights[str(q)] / total) + proposal.log_prob(xs))
        proposal = load_generator(run.prior, run.run_dir / d["proposal_after"])
    by_hand = torch.logsumexp(torch.stack(parts), 0)
    assert torch.allclose(region.reference.log_prob(xs), by_hand, atol=1e-4)
    assert not torch.allclose(region.reference.log_prob(xs), parts[-1], atol=1e-2)
    # the posterior scores the shared components once a batch and rejects as the regions do
    mask, _ = last.posterior.reject_mask(xs)
    alone = torch.zeros(len(xs), dtype=torch.bool)
    for reg in last.posterior.regions:
        log_phi = reg.failure_model.log_prob(xs) - reg.slack
        alone |= run.method.scorer.reject(reg.reference.log_prob(xs), log_phi).cpu()
    known = torch.tensor([bool(last.posterior.excluded and last.posterior.excluded(k))
                          for k in xs.keys()])
    assert torch.equal(mask, alone | known)
    # stopped after 20 NREs and resumed: the same evaluations, in the same order
    _run(tmp_path / "part", 20, *MIX)
    res = CliRunner().invoke(main, ["resume", str(tmp_path / "part"), "--budget", "40"])
    assert res.exit_code == 0, res.output
    again = open_run(tmp_path / "part")
    assert [e.key for e in again.ledger.evaluations()] == [e.key for e in run.ledger.evaluations()]


def test_with_the_rounds_own_negatives_the_mixture_is_the_rounds_proposal(tmp_path):
    flags = ["--set", "banel.failure_model.data=round", *DISTIL]
    mixed = _run(tmp_path / "mixed", 30, *flags, "--set", "banel.posterior.reference=mixture")
    plain = _run(tmp_path / "plain", 30, *flags, "--set", "banel.posterior.reference=proposal")
    assert [e.key for e in mixed.ledger.evaluations()] == \
        [e.key for e in plain.ledger.evaluations()]
    assert all(len(d["reference_weights"]) == 1 for _, _, d in mixed.ledger.rounds()
               if d.get("failure_model"))


def test_guidance_and_a_mixture_reference_are_refused(tmp_path):
    res = CliRunner().invoke(main, ["run", "--budget", "10", "-q", "--out", str(tmp_path / "g"),
                                    "--set", "banel.posterior.reference=mixture",
                                    "--set", "banel.guidance=1.0"])
    assert res.exit_code != 0 and "reference=mixture cannot be combined" in res.output
    assert "Traceback" not in res.output
