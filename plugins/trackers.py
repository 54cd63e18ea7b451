"""Experiment trackers: every round's metrics, the config and the plots in TensorBoard or MLflow.

Chosen by name in the config (`--set trackers.tensorboard={}` or a `trackers:` section); the
libraries are optional extras (`pip install "banel-framework[trackers]"`) imported only when a
tracker is used.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from banel_framework.errors import BanelError
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Options, Tracker


def scalars(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) record, keys joined by '/'; lists and text left out."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalars(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                out[name] = float(value)
    return out


def _plots(run: Any) -> list[Path]:
    return sorted((run.run_dir / "plots").glob("*.png"))


def _need(module: str, extra: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise BanelError(f"this tracker needs {extra}: pip install \"banel-framework[trackers]\""
                         ) from None


class TensorBoardOptions(Options):
    """Where TensorBoard's event files go."""

    log_dir: str | None = Field(None, description="Event file directory (None: RUN_DIR/tensorboard).")


class TensorBoardTracker(Tracker):
    """Round metrics as scalars (step: round), the config as text, the plots as images."""

    Options = TensorBoardOptions

    def start(self, run: Any) -> None:
        _need("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(self.options.log_dir or str(run.run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + (run.run_dir / "config.yaml").read_text() + "```")

    def log_round(self, run: Any, record: dict[str, Any]) -> None:
        for key, value in scalars(record).items():
            self.writer.add_scalar(key, value, global_step=int(record["round"]))
        self.writer.flush()

    def end(self, run: Any, summary: dict[str, Any]) -> None:
        import matplotlib.image as mpimg

        for key, value in scalars(summary, "summary/").items():
            self.writer.add_scalar(key, value, global_step=int(summary.get("rounds") or 0))
        for path in _plots(run):
            image = mpimg.imread(path)[..., :3]
            self.writer.add_image(f"plots/{path.stem}", image, dataformats="HWC")
        self.writer.close()


class MlflowOptions(Options):
    """Which MLflow server or store, experiment and run name."""

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI (None: MLFLOW_TRACKING_URI, else MLflow's default).")
    experiment: str = Field("banel", description="Experiment name.")
    run_name: str | None = Field(None, description="Run name (None: the run directory's name).")


class MlflowTracker(Tracker):
    """The config as params, round metrics (step: round), summary, plots and summary.json as
    artifacts; a resumed run continues the same MLflow run (its id is kept in the ledger)."""

    Options = MlflowOptions

    def start(self, run: Any) -> None:
        mlflow = _need("mlflow", "mlflow")
        o = self.options
        if o.tracking_uri:
            mlflow.set_tracking_uri(o.tracking_uri)
        mlflow.set_experiment(o.experiment)
        known = run.ledger.get_meta("mlflow_run_id")
        active = mlflow.start_run(run_id=known) if known else mlflow.start_run(
            run_name=o.run_name or run.run_dir.name)
        self.run_id = active.info.run_id
        run.ledger.set_meta("mlflow_run_id", self.run_id)
        if not known:
            config = yaml.safe_load((run.run_dir / "config.yaml").read_text())
            mlflow.log_params({k: json.dumps(v)[:500] if not isinstance(v, (int, float, str))
                               else v for k, v in _flat(config).items()})

    def log_round(self, run: Any, record: dict[str, Any]) -> None:
        import mlflow

        mlflow.log_metrics(_safe(scalars(record)), step=int(record["round"]))

    def end(self, run: Any, summary: dict[str, Any]) -> None:
        import mlflow

        mlflow.log_metrics(_safe(scalars(summary, "summary/")))
        for path in _plots(run):
            mlflow.log_artifact(str(path), artifact_path="plots")
        mlflow.log_artifact(str(run.run_dir / "summary.json"))
        mlflow.end_run()


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _safe(metrics: dict[str, float]) -> dict[str, float]:
    """MLflow metric names: letters, digits, '_', '-', '.', ' ', '/'."""
    return {"".join(c if c.isalnum() or c in "_-. /" else "_" for c in k): v
            for k, v in metrics.items()}


@hookimpl
def register_trackers(register):
    register("tensorboard", TensorBoardTracker)
    register("mlflow", MlflowTracker)
