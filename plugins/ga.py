"""ga: a genetic algorithm over token sequences, the black-box design baseline (holo-bench style).

Round 1 evaluates a population sampled from the prior. Every later round breeds children new to
the ledger from the population: parents chosen by tournament on fitness, one-point crossover,
per-token substitution and single-token insertions or deletions over the token ids up to the
largest the prior's samples use. The next population is the best of parents and children ((mu + lambda)
truncation) by reward, ties broken by the prior's log-likelihood (keeps children valid) or at
random. A common final token (EOS) is kept in place. The method's distribution, evaluated after
every round, is its population (uniform over members).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import FitResult, Generator, Options
from banel_framework.posterior import Posterior
from banel_framework.rounds import Batch, Proposal, RoundMethod, draw_new
from banel_framework.run import Run
from banel_framework.samples import Samples, key_sequence, sequence_key


class GaOptions(Options):
    """Population, variation and selection of the genetic algorithm."""

    population: int | None = Field(
        None, ge=2, description="Population size (None: rounds.samples_per_round).")
    mutation_rate: float = Field(0.1, ge=0, le=1, description="Per-token substitution probability.")
    indel_rate: float = Field(
        0.1, ge=0, le=1, description="Probability that a child gains or loses one token.")
    crossover: float = Field(
        0.5, ge=0, le=1, description="Share of children bred by one-point crossover of two parents.")
    tournament: int = Field(2, ge=1, description="Parents compared per selection (tournament size).")
    tiebreak: Literal["prior", "random"] = Field(
        "prior", description="Order of equally rewarded members: prior log-likelihood, or random.")
    alphabet_samples: int = Field(
        2000, ge=1, description="Prior samples (free, no NRE) whose largest token id bounds the alphabet.")
    max_tries: int = Field(
        50, ge=1, description="Children bred per wanted new child before a round gives up.")


@dataclass
class GaState:
    """The population (keys with reward and tie-break score) and the variation alphabet."""

    members: list[str] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    alphabet: list[int] = field(default_factory=list)
    terminator: int | None = None
    max_len: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"population": self.members, "population_reward": self.reward,
                "population_score": self.score, "alphabet": self.alphabet,
                "terminator": self.terminator, "max_len": self.max_len}


class PopulationGenerator(Generator):
    """Uniform over the population's members: what the GA would hand a user."""

    def __init__(self, members: list[str]):
        self.members = list(dict.fromkeys(members))

    def sample(self, n: int, *, seed: int, temperature: float = 1.0) -> Samples:
        rng = random.Random(seed)
        keys = [rng.choice(self.members) for _ in range(n)]
        out = Samples.from_keys(keys)
        out.log_prob = torch.full((n,), -math.log(len(self.members)))
        return out

    def log_prob(self, samples: Samples) -> torch.Tensor:
        inside = set(self.members)
        lp = -math.log(len(self.members))
        return torch.tensor([lp if k in inside else -math.inf for k in samples.keys()])  # noqa: SIM118

    def log_prob_at(self, samples: Samples, temperature: float) -> torch.Tensor:
        return self.log_prob(samples)  # uniform over distinct members at any temperature

    def fit(self, samples, settings, *, seed, weights=None) -> FitResult:
        raise NotImplementedError("a GA population is not fitted")

    def clone(self) -> PopulationGenerator:
        return PopulationGenerator(self.members)

    def fresh(self) -> PopulationGenerator:
        return self.clone()


class GaMethod(RoundMethod):
    """Mutation, crossover and (mu + lambda) selection on the reward, from a prior population."""

    name = "ga"
    description = "Genetic algorithm over token sequences (mutation, crossover, selection)."
    Options: ClassVar[type[Options]] = GaOptions

    def restore(self, run: Run) -> GaState:
        last = None
        for _, status, data in run.ledger.rounds():
            if status in ("fitted", "done") and "population" in data:
                last = data
        if last is None:
            return GaState()
        return GaState(list(last["population"]), list(last["population_reward"]),
                       list(last["population_score"]), list(last["alphabet"]),
                       last["terminator"], int(last["max_len"]))

    def sampler(self, run: Run, state: GaState) -> Posterior:
        gen = PopulationGenerator(state.members) if state.members else run.prior
        return Posterior(run.prior, gen, None, [], 1.0)

    def propose(self, run: Run, state: GaState, r: int, n: int) -> Proposal:
        if not state.members:
            return draw_new(run, Posterior(run.prior, run.prior, None, [],
                                           run.config.rounds.temperature), r, n)
        rng = random.Random(run.seed(r, "ga"))
        children: dict[str, None] = {}
        tries = 0
        while len(children) < n and tries < self.options.max_tries * n:
            tries += 1
            key = sequence_key(self._child(state, rng))
            if key not in children and not run.is_known(key):
                children[key] = None
        data = {"proposals_drawn": tries, "accepted": len(children),
                "acceptance": len(children) / tries}
        if not children:
            return Proposal(Samples.empty(), data, stop=(
                f"no new children in {tries} tries: the population has converged"))
        return Proposal(Samples.from_keys(list(children)), data)

    def learn(self, run: Run, state: GaState, r: int, batch: Batch) -> dict[str, Any]:
        if not state.members:
            free = run.prior.sample(self.options.alphabet_samples, seed=run.seed(r, "alphabet"))
            self._alphabet(state, [key_sequence(k) for k in batch.keys] + free.sequences())
        old = set(state.members)
        keys = state.members + [k for k in batch.keys if k not in old]
        rewards = state.reward + [x for k, x in zip(batch.keys, batch.rewards) if k not in old]
        new = keys[len(state.members):]
        scores = state.score + self._scores(run, new, r)
        size = self.options.population or run.config.rounds.samples_per_round
        order = sorted(range(len(keys)), key=lambda i: (-rewards[i], -scores[i]))[:size]
        state.members = [keys[i] for i in order]
        state.reward = [rewards[i] for i in order]
        state.score = [scores[i] for i in order]
        return {"batch_successes": sum(1 for x in batch.rewards if x > 0),
                "population_successes": sum(1 for x in state.reward if x > 0), **state.as_dict()}

    # -- variation ------------------------------------------------------------------------------

    def _scores(self, run: Run, keys: list[str], r: int) -> list[float]:
        """Tie-break scores of new members: prior log-likelihood, or random."""
        if not keys:
            return []
        if self.options.tiebreak == "random":
            rng = random.Random(run.seed(r, "ga_tiebreak"))
            return [rng.random() for _ in keys]
        return [float(x) for x in run.prior.log_prob(Samples.from_keys(keys)).tolist()]

    @staticmethod
    def _alphabet(state: GaState, seqs: list[list[int]]) -> None:
        """Tokens to mutate with, the common final token (if any) and the longest length."""
        ends = {s[-1] for s in seqs if s}
        term = next(iter(ends)) if len(ends) == 1 else None
        if term is not None and any(term in s[:-1] for s in seqs):
            term = None
        top = max((t for s in seqs for t in s), default=0)  # ids 0..V-1: every id up to the top
        state.alphabet = [t for t in range(top + 1) if t != term] or [top]
        state.terminator = term
        state.max_len = max((len(s) for s in seqs), default=1)

    def _parent(self, state: GaState, rng: random.Random) -> list[int]:
        """Tournament: the best (by population rank) of `tournament` random members."""
        i = min(rng.randrange(len(state.members)) for _ in range(self.options.tournament))
        seq = key_sequence(state.members[i])
        return seq[:-1] if state.terminator is not None and seq[-1:] == [state.terminator] else seq

    def _child(self, state: GaState, rng: random.Random) -> list[int]:
        o = self.options
        child = self._parent(state, rng)
        if rng.random() < o.crossover:
            other = self._parent(state, rng)
            child = child[:rng.randint(0, len(child))] + other[rng.randint(0, len(other)):]
        before = list(child)
        child = [rng.choice(state.alphabet) if rng.random() < o.mutation_rate else t for t in child]
        if child == before and child:  # every child differs from its parent in one token at least
            i = rng.randrange(len(child))
            child[i] = rng.choice([t for t in state.alphabet if t != child[i]] or state.alphabet)
        if rng.random() < o.indel_rate:
            if child and rng.random() < 0.5:
                del child[rng.randrange(len(child))]
            else:
                child.insert(rng.randint(0, len(child)), rng.choice(state.alphabet))
        room = state.max_len - (state.terminator is not None)
        child = child[:max(1, room)] or [rng.choice(state.alphabet)]
        return child + ([state.terminator] if state.terminator is not None else [])


@hookimpl
def register_methods(register):
    register(GaMethod.name, GaMethod)
