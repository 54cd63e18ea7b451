"""Run configuration: pydantic models, file loading, `--set` overrides and readable errors."""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Section(BaseModel):
    """A config section: unknown keys are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FitSettings(Section):
    """Maximum-likelihood fitting of a generator or failure model."""

    epochs: int = Field(10, ge=0, description="Passes over the data (paper Fig. 10: more helps).")
    lr: float = Field(0.01, gt=0, description="Adam learning rate.")
    batch_size: int = Field(64, ge=1, description="Sequences per optimisation step.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (None: no cap).")
    keep_optimizer: bool = Field(
        False, description="Start from the optimizer state the last such fit left (Adam's moments), "
        "as one long training run would; the generator must support it.")


class GeneratorConfig(Section):
    """Which generator family builds the prior."""

    name: str | None = Field(None, description="Registered generator name; None: the task's default.")
    options: dict[str, Any] = Field(default_factory=dict, description="Options of that generator.")


class FailureModelConfig(Section):
    """The failure model p_phi fitted on each round's negatives."""

    name: str = Field("finetune", description="Registered failure-model builder.")
    init: Literal["prior", "proposal", "scratch"] = Field(
        "prior", description="Initialise phi from the prior, the current proposal, or from scratch."
    )
    data: Literal["round", "all"] = Field(
        "round", description="Fit phi on this round's negatives or on all negatives so far."
    )
    success_weight: float = Field(
        0.0, ge=0, description="Weight of each known success as a counter-example in phi's fit "
        "(its log-likelihood is pushed down with this weight; a negative has weight 1); "
        "0 = the paper's fit on failures only."
    )
    max_counter_examples: int | None = Field(
        None, ge=1, description="Fit phi on at most this many known successes, a seeded random "
        "subset each round (None: all; the fit's cost grows with them)."
    )
    min_failure_share: float = Field(
        0.0, ge=0, le=1, description="Add no region in a round where less than this share of "
        "the evaluations failed (a phi fitted on a round of mostly successes rejects nothing "
        "and costs filtering); 0: a region whenever there are negatives."
    )
    fit: FitSettings = Field(default_factory=FitSettings, description="Fitting schedule for phi.")
    options: dict[str, Any] = Field(default_factory=dict, description="Options of the builder.")


class PosteriorConfig(Section):
    """The rejection rule: reject x when kappa*log p_phi(x) - log p_ref(x) > log f."""

    name: str = Field("ratio", description="Registered posterior scorer.")
    filter_factor: float = Field(2.0, gt=0, description="f: reject when p_phi^kappa / p_ref > f.")
    kappa: float = Field(1.0, gt=0, description="Exponent on the failure model's likelihood.")
    reference: Literal["prior", "proposal", "control", "mixture"] = Field(
        "prior", description="Model in the ratio's denominator: the fixed prior, that round's "
        "proposal, a control: the failure model's recipe (same start, same fit) applied to "
        "as many fresh posterior samples, never evaluated, so that what the fit does to any "
        "data cancels in the ratio (one more fit a round), or the mixture of the proposals "
        "that drew phi's negatives, each weighted by how many it drew (with "
        "failure_model.data=all, every round's proposal; measured on addition-attack in "
        "docs/addition-attack.md)."
    )
    control_from: Literal["current", "rounds"] = Field(
        "current", description="With reference=control, the fresh samples the control is "
        "fitted on: the current posterior's, or each earlier round's posterior's, as many as "
        "phi's negatives from that round (the distribution phi's negatives were drawn from)."
    )
    guard_successes: bool = Field(
        False, description="Spare known successes: lower a new region's log p_phi (its slack) "
        "just enough that it rejects no success already in the ledger."
    )
    calibrate: float | None = Field(
        None, gt=0, lt=1, description="Calibrate each region instead of using f alone: hold out "
        "some of the round's negatives from phi's fit and shift the region's threshold (its "
        "slack) so that it rejects this share of them (None: f as given).")
    holdout: float = Field(
        0.2, gt=0, lt=1, description="Share of the round's negatives held out of phi's fit "
        "when calibrate is set.")
    window: int | None = Field(
        None, ge=1, description="Apply only the regions of the last this many rounds: the "
        "older ones are taken as absorbed by the distillations since (None: every region, "
        "the paper's union).")
    options: dict[str, Any] = Field(default_factory=dict, description="Options of the scorer.")


class RoundsConfig(Section):
    """The round machine every method runs on: candidates per round, sampling, rounds."""

    samples_per_round: int = Field(100, ge=1, description="m: new candidates evaluated per round.")
    draw_batch_size: int = Field(1024, ge=1, description="Proposals drawn per batch.")
    max_draws_per_round: int = Field(
        200_000, ge=1, description="Cap on proposals drawn in a round; fewer new candidates end it."
    )
    max_rounds: int | None = Field(None, ge=1, description="Stop after this many rounds.")
    temperature: float = Field(
        1.0, gt=0, description="Sampling temperature of every draw (candidates and evaluation; "
        "the prior's reference rate is measured at the same temperature).")
    free_check: bool = Field(
        False, description="Answer the samples the task's free check (Task.valid) fails as "
        "failures without an NRE: never evaluated; methods that learn from their whole batch "
        "see them at reward 0.")


class OracleConfig(Section):
    """Which oracle spends the NREs."""

    name: str | None = Field(None, description="Registered oracle; None: the task's own.")
    options: dict[str, Any] = Field(default_factory=dict, description="Options of that oracle.")
    batch_size: int | None = Field(None, ge=1, description="Samples per oracle call (ledger commit).")
    executor: str = Field("inline", description="Registered executor that dispatches oracle calls.")
    workers: int = Field(1, ge=1, description="Oracle calls the executor keeps in flight at once.")
    timeout: float | None = Field(
        None, gt=0, description="Seconds one attempt of a call may take (None: no limit).")
    retries: int = Field(
        2, ge=0, description="Attempts after the first when a call raises or times out.")
    backoff: float = Field(
        1.0, ge=0, description="Seconds before the first retry; doubled each retry (max 60).")
    failed_counts_budget: bool = Field(
        True, description="A call that still fails counts against the budget (it was paid).")
    max_failed_share: float = Field(
        0.5, gt=0, le=1, description="Stop (resumable) once more than this share of the calls "
        "failed, after at least 5 failures.")


class EvalConfig(Section):
    """Off-budget evaluation of success rates (never counted as NREs)."""

    exact: Literal["auto", "never"] = Field(
        "auto", description="Use exact rates when the task can enumerate its sample space."
    )
    samples: int = Field(2000, ge=0, description="Posterior samples per sampled evaluation.")
    final_samples: int | None = Field(
        None, ge=1, description="Samples for the final evaluation (None: eval.samples).")
    prior_samples: int = Field(20000, ge=0, description="Prior samples for the reference rate.")
    every: int = Field(1, ge=1, description="Evaluate after every k-th round (and the last).")
    confidence: float = Field(0.95, gt=0, lt=1, description="Clopper-Pearson interval level.")
    max_draws: int = Field(2_000_000, ge=1, description="Cap on proposals drawn for one evaluation.")


class TrainerConfig(Section):
    """Lightning trainer settings shared by every fit."""

    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu, ...")
    devices: int | str = Field(1, description="Devices per fit.")
    precision: str = Field("32-true", description="Lightning precision, e.g. bf16-mixed on GPU.")
    num_threads: int | None = Field(None, ge=1, description="torch.set_num_threads (None: leave).")


class RunConfig(Section):
    """What every method shares; saved to config.yaml in the run directory.

    The chosen method's own options sit in a section named after it (`banel:`, `reinforce:`);
    `run.method.options` holds them validated."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    task: str | None = Field(None, description="Task name; None: the built-in default task.")
    task_options: dict[str, Any] = Field(default_factory=dict, description="The task's options.")
    method: str | None = Field(None, description="Method that spends the budget; None: the "
                               "registered default (banel).")
    seed: int = Field(0, ge=0, description="Seed of everything in the run.")
    budget: int = Field(2000, ge=1, le=10**12,
                        description="Hard NRE budget: oracle calls allowed (at most 1e12).")
    trackers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Experiment trackers by registered name, each with "
        "its options, e.g. {tensorboard: {}, mlflow: {experiment: attack}}.")
    failures_only: bool = Field(
        False, description="The paper's protocol: no success enters any fit. Methods that can "
        "feed successes back turn that off (BaNEL: no counter-examples, success share, "
        "neighbours, guard or training on positives); methods that learn from rewards by "
        "definition (reinforce, rnd, count) are unchanged.")
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    rounds: RoundsConfig = Field(default_factory=RoundsConfig)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    progress: bool = Field(True, description="Show a progress bar.")

    def sections(self) -> dict[str, Any]:
        """The sections beyond the shared ones: methods' options, by method name."""
        return dict(self.model_extra or {})


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML config file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text (a binary file?)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"malformed config file {path}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def parse_value(text: str) -> Any:
    """Parse a `--set` value: YAML scalars and lists, with numbers like 1e-3 as floats."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Turn `key.sub=value` strings into a nested dict."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        set_path(out, key.split("."), parse_value(raw))
    return out


def set_path(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set tree[a][b][c] = value for parts [a, b, c], creating dicts on the way."""
    node = tree
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `over` merged in, recursively for nested mappings."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line naming the first invalid field, its problem and the value given."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    msg = err["msg"]
    if err.get("type") == "extra_forbidden":
        msg = "unknown option"
    given = err.get("input")
    shown = "" if err.get("type") in ("extra_forbidden", "missing") else f" (got {json.dumps(given, default=str)})"
    more = len(exc.errors()) - 1
    tail = f"; and {more} more problem{'s' if more > 1 else ''}" if more else ""
    return f"invalid configuration: {loc or 'config'}: {msg}{shown}{tail}"


def validate_options(model: type[BaseModel], data: dict[str, Any], prefix: str) -> BaseModel:
    """Validate a plugin's or task's options, naming the field on error."""
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, prefix)) from None


def build_config(layers: list[dict[str, Any]]) -> RunConfig:
    """Merge layers (later wins) and validate them into a RunConfig."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def describe_fields(model: BaseModel | type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted name, default, description) for every option of a config model or instance."""
    instance = model() if isinstance(model, type) else model
    rows: list[tuple[str, str, str]] = []
    for name, info in type(instance).model_fields.items():
        key = f"{prefix}{name}"
        value = getattr(instance, name)
        if isinstance(value, BaseModel):
            rows.extend(describe_fields(value, key + "."))
            continue
        rows.append((key, json.dumps(value, default=str), info.description or ""))
    return rows


def describe_options(cls: Any, values: dict[str, Any], prefix: str,
                     owner: str) -> list[tuple[str, str, str]]:
    """(dotted name, value, description) of an Options class's fields, with the values given
    (else the field's default, or 'required')."""
    rows = []
    for name, info in getattr(cls, "model_fields", {}).items():
        if name in values:
            value = json.dumps(values[name], default=str)
        elif info.is_required():
            value = "(required)"
        else:
            value = json.dumps(info.get_default(call_default_factory=True), default=str)
        rows.append((f"{prefix}{name}", value, f"{info.description or ''} [{owner}]"))
    return rows
