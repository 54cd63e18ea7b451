"""Experiment trackers: TensorBoard and MLflow, the real libraries writing to local directories."""

import json

import pytest
from click.testing import CliRunner

from banel_framework.cli import main

BASE = ["-q", "--budget", "30", "--set", "rounds.samples_per_round=10",
        "--set", "trainer.num_threads=1"]


def ok(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def test_tensorboard_gets_every_round_and_the_plots(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "r"
    ok("run", "--out", out, *BASE, "--set", "trackers.tensorboard={}")
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0}).Reload()
    rounds = json.loads((out / "summary.json").read_text())["rounds"]
    nre = acc.Scalars("nre_after")
    assert [e.step for e in nre] == list(range(1, rounds + 1))
    assert [e.value for e in nre] == [10.0 * k for k in range(1, rounds + 1)]
    assert "eval/rate" in acc.Tags()["scalars"]
    assert any(t.startswith("plots/") for t in acc.Tags()["images"])


def test_mlflow_gets_params_metrics_artifacts_and_a_resume_continues_its_run(tmp_path,
                                                                            monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    out = tmp_path / "r"
    ok("run", "--out", out, *BASE, "--set", f"trackers.mlflow.tracking_uri={uri}",
       "--set", "trackers.mlflow.experiment=test")
    ok("resume", out, "--budget", "50", "-q")
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert len(runs) == 1  # the resume logged into the same MLflow run
    run = runs[0]
    assert run.data.params["method"] == "banel" and run.data.params["budget"] == "30"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "nre_after")]
    assert steps == [1, 2, 3, 4, 5]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "summary.json" in names and "plots" in names


def test_a_broken_tracker_never_stops_the_run(tmp_path, monkeypatch):
    from banel_plugins import trackers

    def boom(self, run, record):
        raise RuntimeError("tracker server down")

    monkeypatch.setattr(trackers.TensorBoardTracker, "log_round", boom)
    out = tmp_path / "r"
    ok("run", "--out", out, *BASE, "--set", "trackers.tensorboard={}")
    assert json.loads((out / "summary.json").read_text())["nre_used"] == 30
    log = (out / "run.log").read_text()
    assert log.count("tracker TensorBoardTracker failed in log_round") == 1


def test_an_unknown_tracker_is_named(tmp_path):
    res = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "r"), *BASE,
                                    "--set", "trackers.wandb={}"])
    assert res.exit_code == 2 and "wandb" in res.stderr
    assert not (tmp_path / "r").exists()
