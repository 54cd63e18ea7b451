"""banel.posterior.window: only the last regions apply, in the run and when it is rebuilt."""

from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.run import open_run
from banel_plugins.banel import replay


def test_only_the_last_regions_apply_and_replay_agrees(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "-q", "--budget", "400",
                                    "--set", "banel.posterior.window=2"])
    assert res.exit_code == 0, res.output
    run = open_run(out)
    rounds = [(r, d) for r, status, d in run.ledger.rounds() if status == "done"]
    fitted = [r for r, d in rounds if d.get("failure_model")]
    assert len(fitted) >= 3  # more regions were fitted than the window keeps
    seen = [d["regions"] for _, d in rounds if "regions" in d]  # regions in force when drawing
    assert max(seen) == 2 and seen[:2] == [0, 1], seen
    last = None
    for last in replay(run):
        pass
    assert [g.round for g in last.posterior.regions] == fitted[-2:]
