"""banel.distill.success_share: known successes join the distilled proposal's fit."""

import csv

from click.testing import CliRunner

from banel_framework.cli import main
from banel_plugins.banel import distill_data, load_generator
from banel_framework.run import open_run
from banel_framework.samples import Samples

DISTIL_EVERY_ROUND = ["--set", "banel.distill.enabled=true",
                      "--set", "banel.distill.acceptance_below=1.0",
                      "--set", "banel.distill.samples=300", "--set", "banel.distill.fit.epochs=10",
                      "--set", "banel.distill.fit.lr=0.05"]


def _run(out, share):
    res = CliRunner().invoke(main, ["run", "--out", str(out), "-q", "--budget", "100",
                                    "--seed", "1", *DISTIL_EVERY_ROUND,
                                    "--set", f"banel.distill.success_share={share}"])
    assert res.exit_code == 0, res.output
    return open_run(out)


def test_successes_take_their_share_of_the_distillation_fit(tmp_path):
    run = _run(tmp_path / "a", 0.0)
    known = [e.key for e in run.ledger.solutions()]
    assert known  # the toy finds successes in 100 NREs
    posterior = Samples.from_keys(["1", "2", "3"] * 100)
    last = max(r for r, _, _ in run.ledger.rounds())
    dc = run.method.options.distill
    dc.success_share = 0.25
    data, n, near = distill_data(run, dc, posterior, last)
    assert n == len(known) and near == 0
    extra = data.keys()[300:]
    assert data.keys()[:300] == posterior.keys() and set(extra) == set(known)
    assert {extra.count(k) for k in known} == {len(extra) // n}  # each success equally often
    assert abs(len(extra) / len(data) - 0.25) < 0.02
    dc.success_share = 0.0
    assert distill_data(run, dc, posterior, last) == (posterior, 0, 0)


def test_distilled_proposal_puts_more_mass_on_known_successes(tmp_path):
    plain, taught = _run(tmp_path / "plain", 0.0), _run(tmp_path / "taught", 0.5)
    rounds = {r: d for r, _, d in taught.ledger.rounds()}
    first = min(r for r, d in rounds.items() if d.get("distill_successes"))
    known = [e.key for e in taught.ledger.solutions() if e.round <= first]
    assert rounds[first]["distill_successes"] == len(known)
    with open(taught.run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert next(r for r in rows if r["round"] == str(first))["distill_successes"] == str(len(known))
    # the two runs are the same until the first distillation that sees a success
    assert [e.key for e in plain.ledger.evaluations(upto_round=first)] == \
        [e.key for e in taught.ledger.evaluations(upto_round=first)]
    succ = Samples.from_keys(known)
    lp = {}
    for name, run in (("plain", plain), ("taught", taught)):
        path = run.run_dir / {r: d for r, _, d in run.ledger.rounds()}[first]["proposal_after"]
        lp[name] = load_generator(run.prior, path).log_prob(succ).logsumexp(0).item()
    assert lp["taught"] > lp["plain"] + 0.5  # more than 1.6x the mass on the known successes


def test_neighbours_need_a_generator_that_completes_prefixes(tmp_path):
    res = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "r"), "--budget", "20",
                                    "--set", "banel.distill.success_share=0.2",
                                    "--set", "banel.distill.success_neighbours=0.5"])
    assert res.exit_code != 0
    assert "success_neighbours needs a generator that completes prefixes" in res.output
    assert "Traceback" not in res.output


def test_explored_neighbours_need_a_generator_that_completes_prefixes(tmp_path):
    res = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "r"), "--budget", "20",
                                    "--set", "banel.explore_neighbours=0.3"])
    assert res.exit_code != 0
    assert "explore_neighbours needs a generator that completes prefixes" in res.output
    assert "Traceback" not in res.output
