"""banel.failure_model.min_failure_share: a round of mostly successes adds no region."""

from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.run import open_run
from banel_plugins.banel import replay


def test_rounds_with_few_failures_add_no_region_and_replay_agrees(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "-q", "--budget", "300",
                                    "--set", "banel.failure_model.min_failure_share=0.8"])
    assert res.exit_code == 0, res.output
    run = open_run(out)
    fitted = skipped = 0
    for r, status, d in run.ledger.rounds():
        if status != "done":
            continue
        evs = run.ledger.evaluations(round_=r, status="done")
        share = sum(1 for e in evs if (e.reward or 0) <= 0) / len(evs)
        assert bool(d.get("failure_model")) == (share >= 0.8), (r, share)
        fitted += bool(d.get("failure_model"))
        skipped += not d.get("failure_model")
    assert fitted and skipped  # the run exercised both branches
    last = None
    for last in replay(run):
        pass
    assert len(last.posterior.regions) == fitted  # resume rebuilds the same posterior
