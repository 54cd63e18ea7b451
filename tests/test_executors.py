"""Oracle executors: the same evaluations as inline, several calls in flight, one ledger writer."""

import sqlite3

import pytest

from banel_framework.run import create_run, plan
from banel_framework.runner import execute


def run_with(tmp_path, executor, workers):
    out = tmp_path / f"{executor}{workers}"
    p = plan([{"task": "toy-1d", "method": "banel", "budget": 24, "progress": False,
               "task_options": {"oracle_seconds": 0.05}, "rounds": {"samples_per_round": 8},
               "oracle": {"executor": executor, "workers": workers, "batch_size": 2}}])
    execute(create_run(p, out))
    con = sqlite3.connect(out / "ledger.sqlite")
    rows = con.execute("SELECT key, reward, status, attempts, called_at, finished_at "
                       "FROM evaluations ORDER BY id").fetchall()
    con.close()
    return rows


def in_flight(rows):
    """The most calls whose [called, finished] intervals overlap at one instant."""
    events = sorted([(r[4], 1) for r in rows] + [(r[5], -1) for r in rows])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@pytest.mark.parametrize("executor", ["threads", "processes", "ray"])
def test_parallel_executors_make_the_inline_evaluations(tmp_path, executor):
    inline = run_with(tmp_path, "inline", 1)
    par = run_with(tmp_path, executor, 4)
    assert [r[:2] for r in par] == [r[:2] for r in inline]  # same keys, same rewards, same order
    assert all(r[2] == "done" and r[3] == 1 for r in par)  # each called once
    assert in_flight(inline) <= 2  # one call of 2 samples at a time
    assert in_flight(par) > 2  # several calls in flight at once


def test_an_unknown_executor_is_named():
    from banel_framework.errors import BanelError

    with pytest.raises(BanelError, match="unknown executor 'cluster'"):
        plan([{"task": "toy-1d", "oracle": {"executor": "cluster"}}])


def test_a_cluster_that_cannot_be_reached_stops_the_run_before_any_evaluation(tmp_path,
                                                                              monkeypatch):
    from click.testing import CliRunner

    from banel_framework.cli import main
    from banel_plugins import ray_executor

    class Unreachable:  # what ray.init raises for an address with no cluster (measured by hand)
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kwargs):
            raise ConnectionError(f"Failed to connect to Ray cluster at {kwargs['address']}")

    monkeypatch.setattr(ray_executor, "_ray", lambda: Unreachable)
    monkeypatch.setenv("RAY_ADDRESS", "10.9.9.9:6390")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "--budget", "20", "-q",
                                    "--set", "oracle.executor=ray"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == (
        "Error: oracle.executor=ray: cannot connect to the Ray cluster at "
        "RAY_ADDRESS=10.9.9.9:6390: Failed to connect to Ray cluster at 10.9.9.9:6390; a cluster "
        "with token authentication (Ray's default for `ray start`) needs RAY_AUTH_MODE=token and "
        "its token (~/.ray/auth_token or RAY_AUTH_TOKEN)")
    assert "prior success rate" not in (out / "run.log").read_text()  # failed before any work
    con = sqlite3.connect(out / "ledger.sqlite")
    assert con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 0
    con.close()
