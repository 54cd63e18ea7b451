"""A run: its configuration, directory, ledger, oracle, prior and evaluator, built and checked."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError
from tqdm.auto import tqdm

from .config import (
    RunConfig,
    build_config,
    deep_merge,
    load_config_file,
    parse_overrides,
    validate_options,
)
from .errors import BanelError, ConfigError
from .evaluation import Evaluator
from .faults import FaultPolicy
from .interfaces import (
    Generator,
    Method,
    Options,
    RewardOracle,
    Task,
    TaskContext,
)
from .ledger import Ledger
from .legacy import migrate
from .listing import cache_dir
from .lock import RunLock
from .oracle import LedgeredOracle
from .plugins import PluginHost, get_host
from .samples import key_sequence
from .seeding import derive_seed

CONFIG_FILE = "config.yaml"
LEDGER_FILE = "ledger.sqlite"


@dataclass
class Plan:
    """A validated configuration with every named component resolved."""

    config: RunConfig
    task: Task
    method: Method
    generator_name: str
    generator_cls: Any
    host: PluginHost
    oracle_factory: Any = None
    executor_cls: Any = None
    #: The oracle's options, validated by its Options model when it declares one.
    oracle_options: Any = None
    notes: list[str] = field(default_factory=list)
    #: The experiment trackers chosen in `trackers:`, built with their options.
    trackers: list[Any] = field(default_factory=list)


def moved_settings(host: PluginHost) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Every registered method's table of sections that moved since 0.1.0, and each method's
    own option names."""
    out: dict[str, str] = {}
    own: dict[str, set[str]] = {}
    for comp in host.registry.components("method"):
        out.update(getattr(comp.obj, "moved", {}) or {})
        own[comp.name] = set(getattr(comp.obj, "Options", Options).model_fields)
    return out, own


def plan(user_layers: list[dict[str, Any]], host: PluginHost | None = None, *,
         saved: bool = False) -> Plan:
    """Merge the task's defaults under the user's layers, validate, and resolve every name.

    `saved`: the layers come from a run directory, which may predate moved settings (they are
    moved, with a note); in the user's own layers a moved setting is an error naming its place."""
    host = host or get_host()
    reg = host.registry
    user: dict[str, Any] = {}
    for layer in user_layers:
        user = deep_merge(user, layer)
    for key in ("task", "method"):
        if user.get(key) is not None and not isinstance(user[key], str):
            raise ConfigError(f"invalid configuration: {key}: a name (a string), "
                              f"not {user[key]!r}")
    method_name = user.get("method") or reg.default("method")
    user, moved = migrate(user, method_name, *moved_settings(host))
    if moved and not saved:
        raise ConfigError(f"invalid configuration: settings moved: {'; '.join(moved)}")
    task_name = user.get("task") or reg.default("task")
    task_cls = reg.get("task", task_name).obj
    task_opts = validate_options(task_cls.Options, user.get("task_options") or {}, "task_options")
    task: Task = task_cls(task_opts)
    method_cls = reg.get("method", method_name).obj
    methods = set(reg.names("method"))
    # a task's defaults may hold sections for methods that are not installed: skipped
    defaults = task.defaults()
    if user.get("failures_only", defaults.get("failures_only")):
        defaults = deep_merge(defaults, task.failures_only_defaults())
    defaults = {k: v for k, v in defaults.items()
                if k in RunConfig.model_fields or k in methods}
    config = build_config([defaults, user, {
        "task": task_name, "method": method_name,
        "task_options": task_opts.model_dump(mode="json")}])
    sections = config.sections()
    for key in sections:
        if key not in methods:
            raise ConfigError(f"invalid configuration: {key}: unknown option")
    for key in sections:  # other methods' sections (a task's defaults hold several)
        if key != method_name:
            delattr(config, key)
    opts_model = getattr(method_cls, "Options", None) or Options
    options = validate_options(opts_model, sections.get(method_name) or {}, method_name)
    if sections.get(method_name) is not None or opts_model.model_fields:
        setattr(config, method_name, options.model_dump(mode="json"))
    gen_name = config.generator.name or task.default_generator
    gen_cls = reg.get("generator", gen_name).obj
    known = set(getattr(gen_cls, "Options", type("O", (), {"model_fields": {}})).model_fields)
    unknown = sorted(set(config.generator.options) - known) if known else []
    if unknown:
        raise BanelError(f"invalid configuration: generator.options.{unknown[0]}: unknown option "
                         f"of generator {gen_name!r} (known: {', '.join(sorted(known))})")
    oracle_factory, oracle_options = None, None
    if config.oracle.name:
        oracle_factory = reg.get("oracle", config.oracle.name).obj
        opts_model = getattr(oracle_factory, "Options", None)
        oracle_options = (validate_options(opts_model, config.oracle.options, "oracle.options")
                          if opts_model is not None else dict(config.oracle.options))
    executor_cls = reg.get("executor", config.oracle.executor).obj
    trackers = []
    for name, opts in config.trackers.items():
        tcls = reg.get("tracker", name).obj
        trackers.append(tcls(validate_options(tcls.Options, opts or {}, f"trackers.{name}")))
    method = method_cls(options)
    p = Plan(config, task, method, gen_name, gen_cls, host, oracle_factory, executor_cls,
             oracle_options, notes=moved, trackers=trackers)
    method.check(p)
    return p


def user_layers(config_file: str | None, sets: tuple[str, ...] | list[str],
                **flags: Any) -> list[dict[str, Any]]:
    """The user's config layers: file, then --set overrides, then explicit flags."""
    layers = [load_config_file(config_file)] if config_file else []
    layers.append(parse_overrides(list(sets)))
    layers.append({k: v for k, v in flags.items() if v is not None})
    return layers


class Run:
    """Everything one run needs, rooted in its run directory."""

    def __init__(self, p: Plan, run_dir: Path, host: PluginHost, *, resumed: bool = False):
        self.plan = p
        self.config = p.config
        self.task = p.task
        self.run_dir = run_dir
        self.host = host
        self.resumed = resumed
        self.ckpt_dir = run_dir / "checkpoints"
        self.codec = p.task.codec()
        self.method = p.method
        self.ledger = Ledger(run_dir / LEDGER_FILE, existing=resumed)
        self.ledger.set_meta("failed_counts_budget", p.config.oracle.failed_counts_budget)
        self.started = time.time()
        self._prior: Generator | None = None
        self._fields: dict[str, Any] = {}  # the progress bar's figures
        self._flying = 0  # evaluations dispatched, not yet answered
        self.context = task_context(p, p.config.progress)
        self._bar: tqdm | None = None
        self._last_refresh = 0.0
        self.evaluator = Evaluator(p.task, p.task.eval_oracle(self.context), self.codec,
                                   p.config.eval, batch_size=p.config.rounds.draw_batch_size)
        oc = p.config.oracle
        self.oracle = LedgeredOracle(
            self._raw_oracle(), self.ledger, self.codec, batch_size=oc.batch_size,
            executor=p.executor_cls(oc.workers), on_recorded=self._recorded,
            on_progress=self._advance, on_failed=self._failed, on_flight=self._in_flight,
            policy=FaultPolicy(oc.timeout, oc.retries, oc.backoff), task=p.config.task,
            binary=p.task.binary_reward, max_failed_share=oc.max_failed_share)

    # -- parts -----------------------------------------------------------------------------

    def _raw_oracle(self) -> RewardOracle:
        if self.plan.oracle_factory is not None:
            try:
                return self.plan.oracle_factory(self.task, self.context, self.plan.oracle_options)
            except ValidationError as exc:  # a factory that validates its own options
                raise ConfigError(f"oracle.options of {self.config.oracle.name!r}: "
                                  + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                              for e in exc.errors())) from None
        return self.task.oracle(self.context)

    @property
    def prior(self) -> Generator:
        """The pretrained generator p_theta (from the run directory once saved there)."""
        if self._prior is None:
            self.adopt_prior(self.task.prior(self.context))
        assert self._prior is not None
        return self._prior

    def adopt_prior(self, prior: Generator) -> None:
        """Use `prior`, loading the run's saved copy if there is one, else saving it."""
        saved = self.ckpt_dir / "prior.pt"
        if saved.exists():
            prior.load(saved)
        elif getattr(prior, "save_with_run", True):
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            tmp = saved.with_suffix(".pt.partial")
            prior.save(tmp)
            os.replace(tmp, saved)  # a kill mid-save leaves no half-written prior.pt
        self._prior = prior

    def known_key(self, key: str) -> str | None:
        """The ledger key that answers `key`: itself, or with a text-keyed task the key of the
        same text; None when the sample is new."""
        if self.ledger.is_known(key):
            return key
        if self.task.key == "text":
            return self.ledger.key_of_text(self.codec.decode(key_sequence(key)))
        return None

    def is_known(self, key: str) -> bool:
        """True when the ledger has evaluated (or reserved) this sample."""
        return self.known_key(key) is not None

    def seed(self, *parts: object) -> int:
        """A seed derived from the run seed and `parts`."""
        return derive_seed(self.config.seed, *parts)

    def checkpoint(self, name: str) -> Path:
        """A path under checkpoints/ (created)."""
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        return self.ckpt_dir / name

    # -- console and events ----------------------------------------------------------------

    def log(self, message: str, echo: bool = True) -> None:
        """Append a line to run.log; with `echo`, also print it above the progress bar."""
        stamp = datetime.now().strftime("%H:%M:%S")
        with open(self.run_dir / "run.log", "a") as fh:
            fh.write(f"{stamp} {message}\n")
        if echo and self.config.progress:
            tqdm.write(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        """A warning: in run.log, and on stderr even with -q (above the progress bar)."""
        stamp = datetime.now().strftime("%H:%M:%S")
        with open(self.run_dir / "run.log", "a") as fh:
            fh.write(f"{stamp} warning: {message}\n")
        tqdm.write(f"warning: {message}", file=sys.stderr)

    def planned_nres(self) -> int:
        """What the run will spend at most: the budget, or fewer under rounds.max_rounds."""
        rc, total = self.config.rounds, self.ledger.budget
        if rc.max_rounds is not None:
            done = len([1 for _, s, _ in self.ledger.rounds() if s == "done"])
            left = max(0, rc.max_rounds - done) * rc.samples_per_round
            total = min(total, self.ledger.nre_used() + len(self.ledger.pending()) + left)
        return total

    def open_progress(self) -> None:
        """Show a progress bar over the NREs the run will spend."""
        self._bar = tqdm(total=self.planned_nres(), initial=self.ledger.nre_used(), unit="NRE",
                         desc=f"{self.config.method} on {self.config.task}", file=sys.stderr,
                         disable=not self.config.progress, dynamic_ncols=True, leave=True)

    def set_progress(self, **fields: Any) -> None:
        """Update the figures shown beside the progress bar (redrawn at most twice a second);
        evaluations in flight are shown beside them while there are any."""
        if self._bar is None:
            return
        if fields:
            self._fields = fields
        shown = dict(self._fields)
        if self._flying:
            shown["in_flight"] = self._flying
        self._bar.set_postfix(shown, refresh=False)
        now = time.monotonic()
        if now - self._last_refresh > 0.5:
            self._last_refresh = now
            self._bar.refresh()

    def close_progress(self, finished: bool = False) -> None:
        """Close the progress bar; a run that finished early ends it at what was spent."""
        if self._bar is not None:
            if finished and self._bar.n < (self._bar.total or 0):
                self._bar.total = self._bar.n
                self._bar.refresh()
            self._bar.close()
            self._bar = None

    def _in_flight(self, n: int) -> None:
        self._flying = n
        self.set_progress()

    def _advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def _recorded(self, rows: list[tuple[str, str, float]]) -> None:
        self.host.notify("banel_evaluations_recorded", run=self, evaluations=rows)

    def track(self, event: str, **kwargs: Any) -> None:
        """Feed an event to every tracker; one that raises is reported once and skipped."""
        for tracker in list(self.plan.trackers):
            try:
                getattr(tracker, event)(self, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a tracker never stops a run
                self.plan.trackers.remove(tracker)
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                self.log(f"tracker {type(tracker).__name__} failed in {event} and is off for "
                         f"this run: {type(exc).__name__}: {msg[:200]}")

    def _failed(self, keys: list[str], error: str) -> None:
        self.log(f"{len(keys)} oracle call(s) failed after oracle.retries="
                 f"{self.config.oracle.retries}: {error[:300]}")


def task_context(p: Plan, progress: bool = True) -> TaskContext:
    """The context a task builds its prior and oracles in: generator family, cache, devices."""
    cfg = p.config
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)

    def build_generator(**arch: Any) -> Generator:
        fields = getattr(getattr(p.generator_cls, "Options", None), "model_fields", None)
        if p.generator_name != p.task.default_generator and fields:  # a swapped backbone:
            arch = {k: v for k, v in arch.items() if k in fields}  # hints where it has them
        options = validate_options(p.generator_cls.Options, {**arch, **cfg.generator.options},
                                   "generator.options")
        return p.generator_cls.build(options, cfg.trainer)

    return TaskContext(p.generator_name, dict(cfg.generator.options), build_generator,
                       cache_dir() / p.task.name, cfg.trainer, derive_seed(cfg.seed, "prior"),
                       progress)


def build_prior(p: Plan, progress: bool = True) -> Generator:
    """Ask the task for its prior, built with the configured generator family."""
    return p.task.prior(task_context(p, progress))


def default_run_dir(config: RunConfig) -> Path:
    """runs/<task>-<method>-s<seed>-<timestamp>."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.task}-{config.method}-s{config.seed}-{stamp}"


def made_for(p: Plan) -> dict[str, Any]:
    """What a ledger's rewards and keys mean: the task, its options and the prior's family."""
    c = p.config
    return {"task": c.task, "task_options": c.task_options, "generator": c.generator.name,
            "generator_options": c.generator.options, "method": c.method}


def check_trainer(tc: Any) -> None:
    """Refuse an accelerator, device count or precision this machine cannot use, before any
    NRE is spent (Lightning would fail at the first fit, after the first oracle calls)."""
    import logging

    import lightning as L

    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.ERROR)  # no "GPU available: ..." lines for a check
    try:
        L.Trainer(accelerator=tc.accelerator, devices=tc.devices, precision=tc.precision,
                  logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False)
    except Exception as exc:  # noqa: BLE001 - Lightning's own message, on one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"invalid configuration: trainer (accelerator={tc.accelerator!r}, "
                          f"devices={tc.devices!r}, precision={tc.precision!r}): {first}") from None
    finally:
        log.setLevel(level)


def create_run(p: Plan, out: str | Path | None, host: PluginHost | None = None) -> Run:
    """Create the run directory and its ledger; nothing is written before validation passed."""
    host = host or get_host()
    if out is not None and not str(out).strip():
        raise BanelError("--out is empty; give a directory, or leave it out for runs/<name>")
    run_dir = Path(out) if out else default_run_dir(p.config)
    try:
        if (run_dir / LEDGER_FILE).exists():
            raise BanelError(f"{run_dir} already holds a run; continue it with: "
                             f"banel resume {run_dir}")
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise BanelError(f"{run_dir} exists and is not an empty directory; "
                             "choose another --out")
        if any(q.exists() and not q.is_dir() for q in run_dir.parents):
            raise BanelError(f"cannot create the run directory {run_dir}: a parent is a file")
    except OSError as exc:
        raise BanelError(f"cannot use {run_dir!s:.80} as a run directory: "
                         f"{exc.strerror or exc}") from None
    check_trainer(p.config.trainer)
    prior = build_prior(p, p.config.progress)  # validates the generator options, may pretrain
    created = not run_dir.exists()
    partial = run_dir.parent / f".{run_dir.name}.partial-{os.getpid()}"
    try:
        # config.yaml and the ledger with its budget appear together or not at all: both are
        # written into a hidden directory that is then renamed into place
        partial.mkdir(parents=True)
        (partial / CONFIG_FILE).write_text(
            yaml.safe_dump(p.config.model_dump(mode="json"), sort_keys=False))
        ledger = Ledger(partial / LEDGER_FILE)
        ledger.set_meta("budget", p.config.budget)
        ledger.set_meta("created_at", time.time())
        ledger.set_meta("made_for", made_for(p))
        ledger.set_meta("generator", json.loads(json.dumps(  # what the prior is, as JSON
            {"name": p.generator_name, **prior.describe()}, default=str)))
        ledger.close()
        if run_dir.exists():
            run_dir.rmdir()  # empty, checked above
        os.rename(partial, run_dir)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BanelError(f"cannot create the run directory {run_dir}: "
                         f"{exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        run = Run(p, run_dir, host)
        run.adopt_prior(prior)
        return run
    except BaseException:
        if created and run_dir.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def open_run(run_dir: str | Path, host: PluginHost | None = None,
             budget: int | None = None) -> Run:
    """Reopen an existing run directory (for resume and report)."""
    host = host or get_host()
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.is_file() or not (run_dir / LEDGER_FILE).is_file():
        raise BanelError(f"{run_dir} is not a run directory (no {CONFIG_FILE} and {LEDGER_FILE})")
    data = load_config_file(cfg_path)
    if budget is not None:
        RunLock(run_dir).acquire().release()  # refused before anything is written
        data["budget"] = budget
    p = plan([data], host, saved=True)
    check_trainer(p.config.trainer)
    run = Run(p, run_dir, host, resumed=True)
    recorded, now = run.ledger.get_meta("made_for"), made_for(p)
    if recorded is None:
        run.ledger.set_meta("made_for", now)  # ledgers before 0.3: recorded from here on
    elif recorded != now:
        key = next(k for k in now if recorded.get(k) != now.get(k))
        run.ledger.close()
        raise BanelError(f"{run_dir / CONFIG_FILE} was edited: the ledger was made for "
                         f"{key} = {recorded.get(key)!r}, the config now says {now.get(key)!r}; "
                         "restore it, or start a new run")
    if p.notes:
        note = f"{run_dir} was made by version 0.1; settings moved: {'; '.join(p.notes)}"
        warnings.warn(f"banel: {note}", stacklevel=2)
        run.log(note)
    if budget is not None:
        run.ledger.budget = budget
        (run_dir / CONFIG_FILE).write_text(
            yaml.safe_dump(p.config.model_dump(mode="json"), sort_keys=False))
    return run


class _CallableModule(type(sys)):
    """This module, callable as `banel_framework.run(...)`: the package's `run` attribute is
    this submodule once it has been imported, and the function before."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .api import run

        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
