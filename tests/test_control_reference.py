"""banel.posterior.reference=control: the ratio's denominator fitted like phi on fresh samples."""

import json
from collections import Counter

import torch
from banel_plugins.banel import replay
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.run import open_run
from banel_framework.samples import Samples

CONTROL = ["--set", "banel.posterior.reference=control", "--set", "rounds.samples_per_round=10"]


def test_control_is_fitted_on_as_many_fresh_samples_and_resumes_to_the_same_ledger(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    res = CliRunner().invoke(main, ["run", "--budget", "40", "-q", "--out", str(whole), *CONTROL])
    assert res.exit_code == 0, res.output
    run = open_run(whole)
    rounds = [d for _, _, d in run.ledger.rounds() if d.get("failure_model")]
    assert rounds and all(d["control_samples"] == d["phi_samples"] for d in rounds)
    assert all((whole / d["control_model"]).is_file() for d in rounds)
    # each region's denominator is the control of its round, not the prior, and it differs
    # from phi most on the failures phi was fitted on
    states = list(replay(run))
    for st in states:
        region = st.posterior.regions[-1]
        assert region.reference is not run.prior
        negs = Samples.from_keys([e.key for e in run.ledger.evaluations(upto_round=st.round)
                                  if e.reward == 0])
        fitted = region.failure_model.log_prob(negs) - region.reference.log_prob(negs)
        fresh = run.prior.sample(2000, seed=st.round)
        keep = [i for i, k in enumerate(fresh.keys()) if not run.ledger.is_known(k)]
        fresh = fresh.select(keep)
        other = region.failure_model.log_prob(fresh) - region.reference.log_prob(fresh)
        assert float(fitted.mean()) > float(other.mean()) + 0.1
    # stopped after 20 NREs and resumed: the same evaluations, in the same order
    res = CliRunner().invoke(main, ["run", "--budget", "20", "-q", "--out", str(part), *CONTROL])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["resume", str(part), "--budget", "40"])
    assert res.exit_code == 0, res.output
    again = open_run(part)
    assert [e.key for e in again.ledger.evaluations()] == [e.key for e in run.ledger.evaluations()]
    s1 = json.loads((whole / "summary.json").read_text())["eval"]["final"]["rate"]
    s2 = json.loads((part / "summary.json").read_text())["eval"]["final"]["rate"]
    assert torch.isclose(torch.tensor(s1), torch.tensor(s2))


def test_a_control_drawn_like_phis_negatives_from_each_rounds_posterior(tmp_path):
    from test_addition import TINY

    flags = [*TINY, "--set", "banel.posterior.reference=control",
             "--set", "banel.posterior.control_from=rounds", "--set", "banel.failure_model.data=all",
             "--set", "banel.explore_mutations=0", "--set", "banel.explore_adapt=false",
             "--set", "banel.explore_unscreened_adapt=false", "--set", "banel.distill.samples=500"]
    res = CliRunner().invoke(main, ["run", "--budget", "80", "--out", str(tmp_path), *flags])
    assert res.exit_code == 0, res.output
    run = open_run(tmp_path)
    rounds = [d for _, _, d in run.ledger.rounds() if d.get("failure_model")]
    assert len(rounds) == 2 and rounds[-1]["phi_samples"] > rounds[0]["phi_samples"]
    assert all(d["control_samples"] == d["phi_samples"] for d in rounds)
    for r, d in [(r, d) for r, _, d in run.ledger.rounds() if d.get("failure_model")]:
        negatives = Counter(e.round for e in run.ledger.evaluations(upto_round=r)
                            if e.reward == 0)  # phi's data by round; the control drew as many
        assert d["control_rounds"] == {str(q): k for q, k in negatives.items()}


def test_control_from_needs_a_control_reference(tmp_path):
    res = CliRunner().invoke(main, ["run", "--budget", "10", "-q", "--out", str(tmp_path / "x"),
                                    "--set", "banel.posterior.control_from=rounds"])
    assert res.exit_code != 0 and "control_from needs" in res.output
    assert "Traceback" not in res.output
