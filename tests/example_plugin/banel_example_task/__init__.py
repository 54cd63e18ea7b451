"""An example task package: 'needle', a Zipf prior over tokens with success on the rarest few."""

from __future__ import annotations

import time

import torch
from pydantic import Field

from banel_framework import Codec, Options, RewardOracle, Samples, Task, TaskContext, hookimpl


class NeedleOptions(Options):
    """Options of the needle task."""

    vocab: int = Field(400, ge=10, description="Number of tokens.")
    needles: int = Field(3, ge=1, description="The rarest tokens that count as successes.")


class NeedleCodec(Codec):
    def decode(self, tokens: list[int]) -> str:
        return f"t{tokens[0]}"

    def encode(self, text: str) -> list[int]:
        return [int(text[1:])]


class NeedleOracle(RewardOracle):
    """r(x) = 1 for the `needles` highest token ids (the rarest under the prior)."""

    def __init__(self, vocab: int, needles: int):
        self.first = vocab - needles

    def __call__(self, samples: Samples, texts: list[str]) -> list[float]:
        return [float(s[0] >= self.first) for s in samples.sequences()]


class Needle(Task):
    name = "needle"
    description = "Example plugin task: find the rarest tokens of a Zipf prior."
    Options = NeedleOptions
    default_generator = "categorical"

    def defaults(self):
        return {"budget": 100, "rounds": {"samples_per_round": 10},
                "banel": {"failure_model": {"fit": {"epochs": 20, "lr": 0.1}},
                          "posterior": {"filter_factor": 1.5}}}

    def codec(self) -> Codec:
        return NeedleCodec()

    def prior(self, ctx: TaskContext):
        ranks = torch.arange(1, self.options.vocab + 1, dtype=torch.float64)
        log_p = torch.log_softmax(-1.5 * torch.log(ranks), 0)
        return ctx.build_generator(vocab_size=self.options.vocab, init_log_probs=log_p.tolist())

    def oracle(self, ctx: TaskContext) -> RewardOracle:
        return NeedleOracle(self.options.vocab, self.options.needles)

    def eval_oracle(self, ctx: TaskContext) -> RewardOracle:
        return self.oracle(ctx)

    def support(self) -> Samples:
        return Samples.from_sequences([[i] for i in range(self.options.vocab)])


class SlowOptions(Options):
    delay: float = Field(0.05, ge=0, description="Seconds each call sleeps.")


class SlowOracle(RewardOracle):
    """Any task's oracle, made slow: stands in for a simulator or a lab assay."""

    Options = SlowOptions
    batch_size = 3

    def __init__(self, task: Task, ctx, options: dict):
        self.inner = task.oracle(ctx)
        self.delay = SlowOptions.model_validate(options).delay

    def __call__(self, samples: Samples, texts: list[str]) -> list[float]:
        time.sleep(self.delay)
        return self.inner(samples, texts)


@hookimpl
def register_tasks(register):
    register(Needle.name, Needle)


@hookimpl
def register_oracles(register):
    register("slow", SlowOracle)
