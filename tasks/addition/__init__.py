"""addition-attack: find queries that a small addition transformer answers wrongly."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field

from banel_framework.config import FitSettings
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Codec, Generator, Options, RewardOracle, Task, TaskContext
from banel_framework.samples import Samples

from .arith import EOS, VOCAB, decode, encode, parse, random_queries
from .target import TargetModule, train_target

if TYPE_CHECKING:  # pragma: no cover
    from banel_framework.run import Run

SHIPPED = Path(__file__).parent / "checkpoints"

#: The baselines' settings chosen by benchmarks/tune_baselines.py at 7,500 NREs on seeds 100
#: and 101: the most distinct successes among the settings that end at or above the prior's
#: rate on both seeds (`--select distinct --floor prior`; grids and figures in
#: benchmarks/results/tune_addition-attack_b7500_<method>.json; docs/baselines.md); for
#: reinforce, rnd and count the grids' best few were rerun on seeds 100-103 and chosen again by
#: the same rule (tune_addition-attack_b7500_<method>_4seeds.json). With Adam's moments kept
#: across updates (`keep_optimizer`, 2026-12-06 grids: *_keepopt.json) reinforce and rnd found
#: more on seeds 100-103 and switched; count kept its fresh-optimizer setting.
TUNED: dict[str, dict[str, Any]] = {
    "reinforce": {"lr": 1e-3, "batch_size": 100, "baseline_decay": 0.9, "kl_coef": 0.0,
                  "keep_optimizer": True},
    "rnd": {"lr": 1e-3, "batch_size": 100, "baseline_decay": 0.0, "beta": 0.03, "kl_coef": 3e-3,
            "keep_optimizer": True},
    "count": {"lr": 1e-3, "batch_size": 100, "baseline_decay": 0.9, "beta": 3e-4,
              "kl_coef": 3e-3},
    "nsr": {"lr": 3e-4, "batch_size": 100, "kl_coef": 0.0},
    # T 1.25, 1.5, 2, 3 tried: 5, 5 / 6, 4 / 19, 11 / 19, 20 distinct successes (3 is the edge).
    "tempered": {"temperature": 3.0},
    # mutation rate 0.02, 0.05, 0.1 (generic), 0.2: 449, 516 / 273, 542 / 132, 350 / 211, 129.
    "ga": {"mutation_rate": 0.02},
}


class TargetSpec(Options):
    """How the target is pretrained (deterministic: seeded data and init, fixed steps)."""

    d_model: int = Field(128, ge=8, description="Target width.")
    n_layers: int = Field(3, ge=1, description="Target depth.")
    n_heads: int = Field(4, ge=1, description="Target attention heads.")
    steps: int = Field(14000, ge=1, description="Length of the cosine schedule (most steps).")
    stop_error: float | None = Field(
        5e-4, gt=0, lt=1, description="Stop early once the greedy error on 20,000 held-out "
        "queries of the training distribution is at most this (None: train all steps).")
    check_every: int = Field(1000, ge=1, description="Steps between held-out error checks.")
    batch_size: int = Field(128, ge=1, description="Examples per step.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate (cosine schedule).")
    warmup: int = Field(300, ge=0, description="Linear warm-up steps.")
    reverse_operands: bool = Field(
        False, description="The target reads operands least significant digit first.")
    reverse_answer: bool = Field(
        False, description="The target writes the sum least significant digit first.")
    pad_operands: bool = Field(
        True, description="The target reads each operand padded to max_digits with a pad symbol.")


class AttackerSpec(Options):
    """How the attacker prior is pretrained on queries of the training distribution."""

    queries: int = Field(300_000, ge=1, description="Random training queries.")
    epochs: int = Field(1, ge=1, description="Passes over them.")
    lr: float = Field(3e-3, gt=0, description="Learning rate.")
    batch_size: int = Field(256, ge=1, description="Queries per step.")


class AdditionOptions(Options):
    """Options of the addition-attack task."""

    max_digits: int = Field(5, ge=1, le=12, description="Operands have 1..max_digits digits.")
    operands: Literal["value", "length"] = Field(
        "length", description="Training operands uniform over values 0..10^max_digits-1 (mostly "
        "max_digits digits) or over lengths 1..max_digits.")
    allow_leading_zeros: bool = Field(
        True, description="Count queries with leading zeros ('007+5=') as valid attacks.")
    valid_max_digits: int | None = Field(
        None, ge=1, le=12, description="Longest operand a valid attack may have (None: "
        "max_digits). Longer than max_digits admits operands the target never saw, which it "
        "cannot read (a length failure mode; docs/addition-attack.md).")
    answer_check: Literal["value", "text"] = Field(
        "text", description="How the target's answer is checked: 'text' (the default since "
        "2026-12-07) wants the sum as the training data writes it ('694'), as a string grader "
        "would; 'value' reads it as a number ('0694' is right for 694; the default until then).")
    pretrain_seed: int = Field(0, ge=0, description="Seed of the target's and attacker's pretraining.")
    target: TargetSpec = Field(default_factory=TargetSpec)
    attacker: AttackerSpec = Field(default_factory=AttackerSpec)

    @property
    def longest_valid_operand(self) -> int:
        """The most digits an operand of a valid attack may have."""
        return self.valid_max_digits or self.max_digits


class QueryCodec(Codec):
    """Tokens read as text: '123+45=' (EOS dropped)."""

    def decode(self, tokens: list[int]) -> str:
        return decode(tokens)

    def encode(self, text: str) -> list[int]:
        return encode(text) + [EOS]


class AttackOracle(RewardOracle):
    """r(x) = 1 when x is a valid query and the target's greedy answer is wrong (answer_check)."""

    batch_size = 4096

    def __init__(self, target: TargetModule, max_digits: int, allow_leading_zeros: bool,
                 answer_check: str = "text"):
        self.target = target
        self.max_digits = max_digits  # the longest operand of a valid query
        self.allow_leading_zeros = allow_leading_zeros
        self.answer_check = answer_check

    def __call__(self, samples: Samples, texts: list[str]) -> list[float]:
        parsed = [parse(t, self.max_digits, self.allow_leading_zeros) for t in texts]
        valid = [i for i, p in enumerate(parsed) if p is not None]
        answers = self.target.answer([encode(texts[i]) for i in valid]) if valid else []
        rewards = [0.0] * len(texts)
        for i, ans in zip(valid, answers):
            a, b = parsed[i]
            rewards[i] = float(not correct(ans, a + b, self.answer_check))
        return rewards


def correct(answer: str, value: int, check: str = "text") -> bool:
    """The answer is `value`: as a number ('012' counts as 12), or as text ('12' only)."""
    if check == "text":
        return answer == str(value)
    return answer.isdigit() and int(answer) == value


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


class AdditionAttack(Task):
    """The paper's arithmetic attack: an attacker prior proposes queries to a target model."""

    name = "addition-attack"
    description = "Attack a small addition transformer: find queries it answers wrongly."
    Options = AdditionOptions
    default_generator = "transformer"

    def __init__(self, options: AdditionOptions | None = None):
        super().__init__(options)
        self._target: TargetModule | None = None

    # -- configuration -----------------------------------------------------------------------

    def architecture(self) -> dict[str, Any]:
        """The attacker's default architecture (generator.options override it)."""
        return {"vocab_size": VOCAB, "eos_id": EOS, "max_len": 2 * self.options.max_digits + 5,
                "d_model": 64, "n_layers": 2, "n_heads": 4}

    def defaults(self) -> dict[str, Any]:
        # See docs/addition-attack.md for what each choice measured against the paper's reading
        # (reference = prior, phi from the prior on the round's negatives). Successes found so
        # far are counter-examples in phi's fit (weight 100) and 40% of each distillation
        # fit: a departure from the paper's failures-only method (set both to 0 to restore it).
        # Distillation runs after every round (acceptance_below 1.0; 0.5 until 2026-12-03).
        # One-token mutations of the successes take a share of each round's NREs, set every
        # round from the ledger (explore_adapt, starting at 0.5; chosen on seeds 100-101
        # against fixed shares 0.5 and 0.8, 2026-12-05: docs/addition-attack.md). A share of
        # the mutants skips the regions' test, set every round from the ledger's success rates
        # of the rejected and the passed ones (explore_unscreened_adapt, starting at 0.2;
        # chosen on seeds 100-105 against none and a fixed 0.2, 2026-12-06). The ratio's
        # denominator is a control fitted like phi on fresh posterior samples (reference
        # control, 2026-12-06: over the sixteen seeds 100-110 and 0-4 1,098 distinct successes
        # a seed against 791 with the proposal as reference; seeds 5-9, held out of the
        # choice, did not confirm it: 1,182 against 1,496; over 22 seeds 1,075 against 921,
        # median 872 against 241). All of these but the control are off under --failures-only.
        return {
            "budget": 7500,
            "rounds": {"samples_per_round": 500, "draw_batch_size": 4096,
                       "max_draws_per_round": 2_000_000},
            "banel": {"distill": {"enabled": True, "acceptance_below": 1.0, "samples": 5000,
                                  "dedupe": True, "init": "proposal", "success_share": 0.4,
                                  "fit": {"epochs": 2, "lr": 1e-3, "batch_size": 128}},
                      "failure_model": {"init": "proposal", "data": "all", "success_weight": 100.0,
                                        "fit": {"epochs": 10, "lr": 1e-3, "batch_size": 64}},
                      "posterior": {"filter_factor": 1.032, "reference": "control"},
                      "explore_mutations": 0.5, "explore_adapt": True,
                      "explore_unscreened": 0.2, "explore_unscreened_adapt": True},
            **TUNED,
            "eval": {"samples": 2000, "every": 3, "final_samples": 20000,
                     "prior_samples": 100000},
        }

    def failures_only_defaults(self) -> dict[str, Any]:
        # Under --failures-only each phi is fitted on its round's negatives against the
        # proposal that drew them (the paper's reading: a region rejects the proposal's typical
        # samples), and only the last 3 rounds' regions apply, the distillation after every
        # round having absorbed the older ones (no rejection collapse). With the answer read
        # as text (the task's check), and phi fitted 5 epochs a round (chosen on seeds 0-1 of
        # the compute-scaling sweep, confirmed on seeds 2-9): 1,166x over seeds 0-14 (245x at
        # 10 epochs; 5.3x with the task's defaults). The free check (valid(): no NRE, no
        # success information) keeps malformed queries out of the posterior, and for every
        # method out of the ledger, and the posterior is sampled at 1.2, where the prior meets
        # a leading zero 4x as often: 1,535x the prior at 1 over seeds 0-14, 1,754x over the
        # held-out seeds 15-29; leading zeros disallowed 0.98x. Rounds of 250 NREs (30 rounds)
        # drift twice as often per NRE: 1.25x the successes found on seeds 0-4, and more on
        # every held-out seed of 15-24; leading zeros disallowed 1.86x. Rounds of 125 (60
        # rounds) again: 2.2x the successes found on seeds 0-4 (every seed), 1.4x on the held-out
        # seeds 15-24 (nine of ten); leading zeros disallowed 2.50x (2026-12-07,
        # docs/addition-attack.md). The policy gradients keep their own batch sizes; the GA's
        # population follows the round.
        return {"banel": {"failure_model": {"data": "round", "fit": {"epochs": 5}},
                          "posterior": {"reference": "proposal", "window": 3},
                          "exclude_invalid": True, "temperature": 1.2},
                "rounds": {"free_check": True, "samples_per_round": 125}}

    def codec(self) -> QueryCodec:
        return QueryCodec()

    def valid(self, text: str) -> bool:
        """'a+b=' with operands the oracle accepts (length, leading zeros); else a sure failure."""
        o = self.options
        return parse(text, o.longest_valid_operand, o.allow_leading_zeros) is not None

    # -- pretrained parts ----------------------------------------------------------------------

    def _lengths(self) -> str:
        return "value" if self.options.operands == "value" else "uniform"

    def _cached(self, ctx: TaskContext, stem: str) -> Path | None:
        for root in (ctx.cache_dir, SHIPPED):
            path = root / f"{stem}.pt"
            if path.is_file():
                return path
        return None

    def target_model(self, ctx: TaskContext) -> TargetModule:
        """The pretrained target, from the cache, the package, or trained now (then cached)."""
        if self._target is not None:
            return self._target
        o = self.options
        spec = o.target.model_dump()
        key = {"target": spec, "seed": o.pretrain_seed, "operands": o.operands}
        stem = f"target-d{o.max_digits}-{_digest(key)}"
        path = self._cached(ctx, stem)
        module = TargetModule(o.max_digits, spec["d_model"], spec["n_layers"], spec["n_heads"],
                              spec["lr"], spec["warmup"], spec["steps"], spec["reverse_answer"],
                              spec["reverse_operands"], spec["pad_operands"])
        if path is None:
            start = time.perf_counter()
            module = train_target(o.max_digits, o.pretrain_seed, progress=ctx.progress,
                                  lengths=self._lengths(), **spec)
            ctx.cache_dir.mkdir(parents=True, exist_ok=True)
            path = ctx.cache_dir / f"{stem}.pt"
            torch.save(module.state_dict(), path)
            _write_meta(path, {"spec": spec, "seconds": time.perf_counter() - start,
                               "stopped_at": module.stopped_at, "checks": module.checks,
                               "threads": torch.get_num_threads()})
        else:
            module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        module.eval()
        self._target = module
        return module

    def prior(self, ctx: TaskContext) -> Generator:
        o = self.options
        arch = {**self.architecture(), **ctx.generator_options}
        key = {"family": ctx.generator_name, "arch": arch, "attacker": o.attacker.model_dump(),
               "max_digits": o.max_digits, "seed": o.pretrain_seed, "operands": o.operands}
        stem = f"attacker-{ctx.generator_name}-d{o.max_digits}-{_digest(key)}"
        gen = ctx.build_generator(**self.architecture())
        path = self._cached(ctx, stem)
        if path is not None:
            gen.load(path)
            return gen
        start = time.perf_counter()
        rng = torch.Generator().manual_seed(o.pretrain_seed)
        pairs = random_queries(o.attacker.queries, o.max_digits, rng, self._lengths())
        data = Samples.from_sequences(encode(f"{a}+{b}=") + [EOS] for a, b in pairs)
        settings = FitSettings(epochs=o.attacker.epochs, lr=o.attacker.lr,
                               batch_size=o.attacker.batch_size)
        gen.fit(data, settings, seed=o.pretrain_seed)
        ctx.cache_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.cache_dir / f"{stem}.pt"
        gen.save(path)
        _write_meta(path, {"key": key, "seconds": time.perf_counter() - start})
        return gen

    def pretrain(self, ctx: TaskContext) -> dict[str, Any]:
        start = time.perf_counter()
        target = self.target_model(ctx)
        prior = self.prior(ctx)
        return {"target_parameters": sum(p.numel() for p in target.parameters()),
                "prior": prior.describe(), "seconds": time.perf_counter() - start,
                "cache_dir": str(ctx.cache_dir)}

    # -- oracles -------------------------------------------------------------------------------

    def oracle(self, ctx: TaskContext) -> RewardOracle:
        o = self.options
        return AttackOracle(self.target_model(ctx), o.longest_valid_operand,
                            o.allow_leading_zeros, o.answer_check)

    def eval_oracle(self, ctx: TaskContext) -> RewardOracle:
        return self.oracle(ctx)

    def report(self, run: Run, out_dir: Path) -> list[Path]:
        from .report import failure_modes

        return failure_modes(run, self, out_dir)


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


@hookimpl
def register_tasks(register):
    register(AdditionAttack.name, AdditionAttack)
