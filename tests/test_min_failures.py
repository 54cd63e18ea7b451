"""banel.failure_model.min_failures: a round with too few negatives adds no region."""

from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.run import open_run
from banel_plugins.banel import replay


def test_rounds_with_few_failures_add_no_region_and_replay_agrees(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "-q", "--budget", "300",
                                    "--set", "banel.failure_model.min_failures=8"])
    assert res.exit_code == 0, res.output
    run = open_run(out)
    rounds = [d for _, status, d in run.ledger.rounds() if status == "done"]
    fitted = [d for d in rounds if d.get("failure_model")]
    skipped = [d for d in rounds if not d.get("failure_model")]
    assert fitted and skipped  # the run exercised both branches
    assert all(d["phi_samples"] >= 8 for d in fitted)
    assert all(d["phi_samples"] < 8 for d in skipped)
    last = None
    for last in replay(run):
        pass
    assert len(last.posterior.regions) == len(fitted)  # resume rebuilds the same posterior
