"""The four parts BaNEL is made of, plus tasks and methods: what plugins implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from .samples import Samples

if TYPE_CHECKING:  # pragma: no cover
    from .config import FailureModelConfig, FitSettings, PosteriorConfig, TrainerConfig
    from .posterior import Posterior
    from .run import Plan, Run


class Options(BaseModel):
    """Base for plugin and task options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class FitResult:
    """What one maximum-likelihood fit did."""

    seconds: float
    steps: int
    final_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class LogProbModel(ABC):
    """Anything that gives exact log-likelihoods of samples (a failure model, at least)."""

    @abstractmethod
    def log_prob(self, samples: Samples) -> torch.Tensor:
        """Exact log p(x) of each sample, a float tensor [B] on the CPU."""

    def save(self, path: Path) -> None:  # pragma: no cover - optional
        """Write the weights to `path` (weights only, no pickled code)."""
        raise NotImplementedError

    def load(self, path: Path) -> None:  # pragma: no cover - optional
        """Read the weights written by `save`."""
        raise NotImplementedError


class Generator(LogProbModel):
    """A likelihood-based generator: samples batches with log-probs, scores, copies, fine-tunes."""

    #: The family's options (architecture, sizes); validated before anything runs.
    Options: ClassVar[type[Options]] = Options
    #: False for large models whose weights should not be copied into every run directory.
    save_with_run: ClassVar[bool] = True
    #: True if `complete` continues prefixes (banel.distill.success_neighbours needs it).
    completes_prefixes: ClassVar[bool] = False
    #: True if `fit` honours `FitSettings.keep_optimizer` and `optimizer_state` returns it.
    keeps_optimizer: ClassVar[bool] = False

    @classmethod
    def build(cls, options: Options, trainer: TrainerConfig) -> Generator:
        """A new, untrained generator of this family."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from options")

    @abstractmethod
    def sample(self, n: int, *, seed: int, temperature: float = 1.0) -> Samples:
        """Draw `n` samples with their log-probs (under temperature 1 unless stated)."""

    def log_prob_at(self, samples: Samples, temperature: float) -> torch.Tensor:
        """Exact log-probability under the distribution `sample(temperature=...)` draws from.

        Optional for temperatures other than 1: exact acceptance and exact rates at another
        temperature need it (without it they are estimated from draws)."""
        if temperature == 1.0:
            return self.log_prob(samples)
        raise NotImplementedError(f"{type(self).__name__} cannot score at temperature "
                                  f"{temperature}")

    def complete(self, prefixes: Samples, *, seed: int, temperature: float = 1.0) -> Samples:
        """Continue each prefix (its tokens up to its length) by sampling; full log-probs.

        Optional: banel.distill.success_neighbours needs it."""
        raise NotImplementedError(f"{type(self).__name__} cannot complete prefixes")

    @abstractmethod
    def fit(
        self,
        samples: Samples,
        settings: FitSettings,
        *,
        seed: int,
        weights: torch.Tensor | None = None,
    ) -> FitResult:
        """Fine-tune in place, minimising mean(-weight * log p(x)); weights may be negative."""

    def optimizer_state(self) -> dict[str, Any] | None:
        """The optimizer state the last `keep_optimizer` fit left, or None (for checkpoints)."""
        return None

    def load_optimizer_state(self, state: dict[str, Any] | None) -> None:
        """Restore what `optimizer_state` returned; the next `keep_optimizer` fit starts from it."""
        if state is not None:
            raise NotImplementedError(f"{type(self).__name__} does not keep optimizer state")

    @abstractmethod
    def clone(self) -> Generator:
        """An independent copy with the same weights."""

    @abstractmethod
    def fresh(self) -> Generator:
        """A model of the same architecture with new random weights."""

    def describe(self) -> dict[str, Any]:
        """A short description for logs and summaries."""
        return {"class": type(self).__name__}


class FailureModelBuilder(ABC):
    """Fits a failure model p_phi on the negatives of a round."""

    Options: ClassVar[type[Options]] = Options
    #: True if `fit` accepts `counter_examples` (failure_model.success_weight > 0 needs it).
    accepts_counter_examples: ClassVar[bool] = False

    def __init__(self, options: Options | None = None):
        self.options = options or self.Options()

    def check(self, config: FailureModelConfig) -> None:
        """Refuse failure-model settings this builder cannot serve (raise ConfigError), before
        any NRE."""

    @abstractmethod
    def fit(
        self,
        parent: Generator,
        negatives: Samples,
        settings: FitSettings,
        *,
        from_scratch: bool,
        seed: int,
        counter_examples: Samples | None = None,
        counter_weight: float = 0.0,
    ) -> tuple[LogProbModel, FitResult]:
        """Return a model fitted on `negatives`, initialised from `parent` (or fresh if from_scratch).

        Builders with `accepts_counter_examples` also push the log-likelihood of
        `counter_examples` (known successes) down, each with weight `counter_weight`.
        """

    @staticmethod
    def fit_on(phi: Generator, negatives: Samples, settings: FitSettings, *, seed: int,
               counter_examples: Samples | None = None, counter_weight: float = 0.0
               ) -> FitResult:
        """Fit `phi` on the negatives (weight 1) and the counter-examples (weight -counter_weight)."""
        if counter_examples is None or not len(counter_examples) or counter_weight <= 0:
            return phi.fit(negatives, settings, seed=seed)
        weights = torch.cat([torch.ones(len(negatives)),
                             torch.full((len(counter_examples),), -float(counter_weight))])
        return phi.fit(Samples.cat([negatives, counter_examples]), settings, seed=seed,
                       weights=weights)

    def load(self, parent: Generator, path: Path) -> LogProbModel:
        """A failure model saved by a previous `fit` (weights only), shaped like `parent`."""
        model = parent.fresh()
        model.load(path)
        return model


class PosteriorScorer(ABC):
    """Turns log-likelihoods into rejections: is x inside a failure model's rejection region?"""

    #: The scorer's own options (`banel.posterior.options`), validated before anything runs.
    Options: ClassVar[type[Options]] = Options

    def __init__(self, config: PosteriorConfig):
        self.config = config

    @abstractmethod
    def reject(self, log_ref: torch.Tensor, log_phi: torch.Tensor) -> torch.Tensor:
        """A bool tensor: True where the sample looks like a known failure."""


class RewardOracle(ABC):
    """The expensive binary reward r(x) in {0, 1}; every call on one sample is one NRE."""

    #: Largest batch the oracle accepts in one call (the ledger commits after each call).
    batch_size: int = 256
    #: True: every call also gets `idempotency_keys=[...]`, one per sample, "RUN_ID/KEY", the
    #: same each time that sample is dispatched (after a kill mid-call, a broken worker pool),
    #: so that a paid service can answer a repeated call from its own cache.
    idempotency_keys: bool = False

    @abstractmethod
    def __call__(self, samples: Samples, texts: list[str]) -> list[float]:
        """Rewards for a batch, in order."""


class Codec(ABC):
    """Converts between token sequences and readable strings."""

    @abstractmethod
    def decode(self, tokens: list[int]) -> str:
        """The readable form of one sample."""

    def encode(self, text: str) -> list[int]:  # pragma: no cover - optional
        """The token sequence of a readable string."""
        raise NotImplementedError

    def decode_batch(self, samples: Samples) -> list[str]:
        """Readable forms of a batch."""
        return [self.decode(seq) for seq in samples.sequences()]


@dataclass
class TaskContext:
    """What a task needs to build its parts: the chosen generator family, a cache, devices."""

    generator_name: str
    generator_options: dict[str, Any]
    build_generator: Any  # callable(**architecture) -> Generator of the chosen family
    cache_dir: Path
    trainer: TrainerConfig
    seed: int
    progress: bool = True

    def fit_prior(self, data: Samples, settings: FitSettings, *, seed: int = 0,
                  name: str = "prior", **architecture: Any) -> Generator:
        """A prior of the run's generator family fitted on `data` (seeded by `seed`, not the
        run seed), cached under cache_dir by data, architecture and settings."""
        from .priors import fit_prior

        return fit_prior(self, data, settings, seed=seed, name=name, **architecture)


class Task(ABC):
    """A sparse-reward problem: a prior, an oracle, a codec, defaults, optional exact rates."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = Options
    #: The generator family (a registered generator name) the prior is built with by default.
    default_generator: ClassVar[str] = ""
    #: What identifies a sample for the ledger: its tokens, or its readable text (for oracles
    #: that read text, so that two tokenisations of one text are paid for once).
    key: ClassVar[str] = "tokens"
    #: Rewards are 0 (failure) or 1 (success); any other value from the oracle is refused.
    binary_reward: ClassVar[bool] = True

    def __init__(self, options: Options | None = None):
        self.options = options or self.Options()

    def defaults(self) -> dict[str, Any]:
        """Run-config values that suit this task (merged under the user's config)."""
        return {}

    def failures_only_defaults(self) -> dict[str, Any]:
        """Run-config values that suit this task under the paper's protocol (failures_only):
        merged over defaults(), under the user's config."""
        return {}

    @abstractmethod
    def codec(self) -> Codec:
        """How samples read as strings."""

    @abstractmethod
    def prior(self, ctx: TaskContext) -> Generator:
        """The pretrained generator p_theta (cache expensive work under ctx.cache_dir)."""

    @abstractmethod
    def oracle(self, ctx: TaskContext) -> RewardOracle:
        """The reward oracle whose calls count as NREs."""

    def eval_oracle(self, ctx: TaskContext) -> RewardOracle | None:
        """A cheap oracle for off-budget evaluation, or None when there is none."""
        return None

    def valid(self, text: str) -> bool:
        """A free check (no NRE): False only for samples the oracle is sure to fail, such as
        malformed ones. BaNEL can keep them out of its posterior (banel.exclude_invalid)."""
        return True

    def pretrain(self, ctx: TaskContext) -> dict[str, Any]:
        """Build and cache everything pretrained (`banel pretrain`); returns what was built."""
        return {"prior": self.prior(ctx).describe()}

    def support(self) -> Samples | None:
        """Every possible sample, when the space is small enough for exact success rates."""
        return None

    def report(self, run: Run, out_dir: Path) -> list[Path]:
        """Task-specific pictures for the run's report; returns the files written."""
        return []


class Tracker(ABC):
    """An experiment tracker fed by the run's events (MLflow, TensorBoard, ...); chosen by name
    in `trackers:`. A tracker that raises is reported and skipped; the run goes on."""

    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options | None = None):
        self.options = options or self.Options()

    def start(self, run: Run) -> None:
        """The run (new or resumed) is about to spend its budget."""

    def log_round(self, run: Run, record: dict[str, Any]) -> None:
        """A round finished; `record` is its row of metrics.csv (nested dicts allowed)."""

    def end(self, run: Run, summary: dict[str, Any]) -> None:
        """The run finished; `summary` is summary.json, the plots are written."""


class Method(ABC):
    """A way of spending the NRE budget (BaNEL, a baseline, or no update at all).

    Most methods subclass `banel_framework.rounds.RoundMethod`, which owns the resumable loop."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: The method's settings, read from the config section named after the method.
    Options: ClassVar[type[Options]] = Options
    #: False for a method that learns nothing (its rate is the reference of comparisons).
    learns: ClassVar[bool] = True
    #: True for the reference that `banel compare` measures improvements against.
    reference: ClassVar[bool] = False
    #: Top-level config sections of 0.1.0 that moved into this method's section.
    moved: ClassVar[dict[str, str]] = {}

    def __init__(self, options: Options | None = None):
        self.options: Any = options if options is not None else self.Options()

    def check(self, plan: Plan) -> None:
        """Resolve named parts and refuse what cannot run (raise ConfigError), before any NRE."""

    @abstractmethod
    def run(self, run: Run) -> str:
        """Spend the budget through `run.oracle`; return why it stopped."""

    @abstractmethod
    def distribution(self, run: Run) -> Posterior:
        """The current sampling distribution, rebuilt from the run directory."""

    def final_distribution(self, run: Run) -> tuple[int, Posterior]:
        """(round, distribution) to report as the result; by default the last."""
        done = [r for r, s, _ in run.ledger.rounds() if s == "done"]
        return (done[-1] if done else 0), self.distribution(run)
