"""toy-1d: the paper's 1-D illustration made sparse: a discretised Gaussian, success in a tail."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field, model_validator

from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Codec, Generator, Options, RewardOracle, Task, TaskContext
from banel_framework.samples import Samples

if TYPE_CHECKING:  # pragma: no cover
    from banel_framework.run import Run


#: The baselines' settings chosen by benchmarks/tune_baselines.py (grid and figures in
#: benchmarks/results/tune_toy-1d_b100.json; docs/baselines.md).
TUNED: dict[str, dict[str, Any]] = {
    "reinforce": {"lr": 1.0, "batch_size": 10},
    "rnd": {"lr": 0.3, "batch_size": 10, "beta": 3.0},
    "count": {"lr": 1.0, "batch_size": 20, "beta": 0.3},
}


class Toy1dOptions(Options):
    """Options of the toy-1d task."""

    bins: int = Field(100, ge=4, description="Number of bins on [low, high].")
    low: float = Field(-4.0, description="Left end of the interval.")
    high: float = Field(4.0, description="Right end of the interval.")
    success_above: float = Field(3.1, description="Bins whose centre is at or above this succeed.")
    oracle_seconds: float = Field(
        0.0, ge=0, description="Seconds each call of the (budgeted) oracle sleeps, to stand in "
        "for a slow one (a simulator, a lab assay); the evaluation oracle never sleeps.")

    @model_validator(mode="after")
    def _check(self) -> Toy1dOptions:
        if self.high <= self.low:
            raise ValueError("high must exceed low")
        return self


class BinCodec(Codec):
    """A bin index reads as its centre, e.g. '+3.24'."""

    def __init__(self, opts: Toy1dOptions):
        self.opts = opts

    def centre(self, i: int) -> float:
        o = self.opts
        return o.low + (i + 0.5) * (o.high - o.low) / o.bins

    def decode(self, tokens: list[int]) -> str:
        return f"{self.centre(tokens[0]):+.2f}"

    def encode(self, text: str) -> list[int]:
        o = self.opts
        i = math.floor((float(text) - o.low) / (o.high - o.low) * o.bins)
        return [min(max(i, 0), o.bins - 1)]


class TailOracle(RewardOracle):
    """r(x) = 1 when the bin's centre lies in the success tail."""

    batch_size = 1 << 16

    def __init__(self, codec: BinCodec, seconds: float = 0.0):
        self.codec = codec
        self.seconds = seconds

    def __call__(self, samples: Samples, texts: list[str]) -> list[float]:
        if self.seconds:
            time.sleep(self.seconds)
        th = self.codec.opts.success_above
        return [1.0 if self.codec.centre(seq[0]) >= th else 0.0 for seq in samples.sequences()]


def gaussian_log_probs(opts: Toy1dOptions) -> list[float]:
    """Log-masses of a standard normal over the bins, renormalised to the interval."""
    edges = torch.linspace(opts.low, opts.high, opts.bins + 1, dtype=torch.float64)
    cdf = 0.5 * (1 + torch.erf(edges / math.sqrt(2)))
    mass = (cdf[1:] - cdf[:-1]).clamp_min(1e-300)
    return torch.log(mass / mass.sum()).tolist()


class Toy1d(Task):
    """A discretised N(0, 1) prior over bins; success in the right tail (prior rate ~1e-3)."""

    name = "toy-1d"
    description = "1-D toy: discretised Gaussian prior, success in a tail bin (exact rates)."
    Options = Toy1dOptions
    default_generator = "categorical"

    def defaults(self) -> dict[str, Any]:
        return {
            "budget": 2000,
            "rounds": {"samples_per_round": 10, "draw_batch_size": 4096,
                       "max_draws_per_round": 2_000_000},
            "banel": {"distill": {"enabled": False},
                      "failure_model": {"fit": {"epochs": 30, "lr": 0.1, "batch_size": 64}},
                      "posterior": {"filter_factor": 1.5}},
            # the baselines as tuned on held-out seeds (benchmarks/results/tune_toy-1d_b100.json)
            **TUNED,
            "eval": {"samples": 4096},
        }

    def codec(self) -> BinCodec:
        return BinCodec(self.options)

    def prior(self, ctx: TaskContext) -> Generator:
        log_probs = gaussian_log_probs(self.options)
        if ctx.generator_name == "categorical":
            return ctx.build_generator(vocab_size=self.options.bins, init_log_probs=log_probs)
        raise NotImplementedError("toy-1d builds its prior with the categorical generator")

    def oracle(self, ctx: TaskContext) -> RewardOracle:
        return TailOracle(self.codec(), self.options.oracle_seconds)

    def eval_oracle(self, ctx: TaskContext) -> RewardOracle:
        return TailOracle(self.codec())

    def support(self) -> Samples:
        return Samples.from_sequences([[i] for i in range(self.options.bins)])

    def report(self, run: Run, out_dir: Path) -> list[Path]:
        from .toy1d_report import round_by_round

        return [round_by_round(run, self, out_dir / "toy1d_rounds.png")]


@hookimpl
def register_tasks(register):
    register(Toy1d.name, Toy1d, default=True)


@hookimpl
def register_failure_models(register):
    from .toy1d_kernel import OrdinalKernelFailureModel

    register("ordinal-kernel", OrdinalKernelFailureModel)
