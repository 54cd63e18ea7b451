"""banel.posterior.reference=control: the ratio's denominator fitted like phi on fresh samples."""

import json

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
