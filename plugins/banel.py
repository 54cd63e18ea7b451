"""BaNEL on the round machine: sample the posterior, fit a failure model, add its region, distil."""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from banel_framework.config import (
    FailureModelConfig,
    FitSettings,
    PosteriorConfig,
    Section,
    validate_options,
)
from banel_framework.errors import BanelError, ConfigError
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import Generator, LogProbModel, Options
from banel_framework.ledger import Evaluation
from banel_framework.mixture import Mixture, WeightedMixture, trainable
from banel_framework.posterior import Posterior, RejectionRegion, calibrated_slack, guard_slack
from banel_framework.rounds import Batch, Proposal, RoundMethod, draw_new, free_check
from banel_framework.run import Plan, Run
from banel_framework.samples import Samples, key_sequence, sequence_key


class DistillConfig(Section):
    """Fitting a fresh proposal on posterior samples when acceptance falls (no NREs)."""

    enabled: bool = Field(True, description="Distil at all.")
    acceptance_below: float = Field(
        0.05, ge=0, le=1,
        description="Distil when the updated posterior's acceptance rate falls below this.")
    samples: int = Field(2000, ge=1, description="Posterior samples drawn to fit the new proposal.")
    init: Literal["prior", "proposal"] = Field(
        "prior", description="Fit the new proposal starting from the prior or the current proposal.")
    dedupe: bool = Field(False, description="Fit on unique posterior samples only (keeps diversity).")
    max_draws: int | None = Field(
        None, ge=1, description="Proposals the distillation draw may take (None: 100 x samples, "
        "at most rounds.max_draws_per_round); a posterior that gives fewer (distinct) samples is "
        "distilled on those it gave.")
    prior_mix: float = Field(
        0.0, ge=0, lt=1, description="Sample the new proposal mixed with this share of the prior.")
    success_share: float = Field(
        0.0, ge=0, lt=1, description="Share of the distillation fit made of the ledger's "
        "successes so far, repeated (positive evidence; 0 = the paper's posterior samples only).")
    success_neighbours: float = Field(
        0.0, ge=0, le=1, description="Part of that share given to the successes' neighbours: "
        "the proposal's completions of random prefixes of them that pass the failure regions "
        "(no NREs; needs a generator with complete()).")
    fit: FitSettings = Field(default_factory=lambda: FitSettings(epochs=3, lr=1e-3))


class BanelOptions(Options):
    """BaNEL's settings: the failure model, the rejection rule, distillation."""

    failure_model: FailureModelConfig = Field(default_factory=FailureModelConfig)
    posterior: PosteriorConfig = Field(default_factory=PosteriorConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    train_on_positives: bool = Field(
        False, description="Also fit phi on successes (the paper drops them).")
    select: Literal["last", "best-observed"] = Field(
        "last", description="Final posterior: the last, or the one whose own candidates succeeded "
        "most often in the ledger (no extra NREs; never used for training).")
    guidance: float = Field(
        0.0, ge=0, description="beta of the guided proposal: tokens drawn from log p + beta * "
        "(log p - log p_phi) with the latest failure model (0: off; transformer generators).")
    exclude_known_failures: bool = Field(
        False, description="The posterior also rejects every sample the ledger knows to fail "
        "(exactly: they are known failures), in distillation draws and evaluations too.")
    exclude_invalid: bool = Field(
        False, description="The posterior also rejects every sample the task's free check "
        "(Task.valid, no NRE) marks as sure to fail, such as malformed queries; no success "
        "information, so allowed under --failures-only.")
    temperature: float | None = Field(
        None, gt=0, description="Temperature the posterior's proposal is sampled at (candidates, "
        "distillation draws, evaluation); None: rounds.temperature. The prior's reference rate "
        "stays at rounds.temperature, so the gain is over the prior as it is usually sampled.")
    explore_neighbours: float = Field(
        0.0, ge=0, le=1, description="Share of each round's candidates drawn as the proposal's "
        "completions of random prefixes of the ledger's successes that pass the regions (new "
        "to the ledger, evaluated: NREs spent near what succeeded; needs a generator with "
        "complete(); 0 = the paper's posterior samples only).")
    explore_keep: float = Field(
        0.0, ge=0, lt=1, description="Least share of a success's tokens that each explored "
        "neighbour keeps as its prefix (0: any prefix of at least one token).")
    explore_mutations: float = Field(
        0.0, ge=0, le=1, description="Share of each round's candidates drawn as one-token "
        "substitutions of the ledger's successes (tokens: see explore_alphabet) that pass the "
        "regions and are new to the ledger: the GA's mutation, filtered by the failure "
        "models (0 = off; with explore_neighbours their sum is at most 1).")
    explore_crossover: float = Field(
        0.0, ge=0, le=1, description="Chance that a mutant is instead a one-point crossover of "
        "two of the ledger's successes (a prefix of one, a suffix of the other; no longer "
        "than the longest sequence the ledger holds).")
    explore_indel: float = Field(
        0.0, ge=0, le=1, description="Chance that a mutant is instead a one-token insertion or "
        "deletion (no longer than the longest sequence the ledger holds).")
    explore_alphabet: Literal["successes", "ledger"] = Field(
        "successes", description="Tokens that substitutions and insertions draw from: those "
        "the ledger's successes use, or those of every sequence the ledger holds.")
    explore_substitutions: Literal["uniform", "novel", "novel-unscreened"] = Field(
        "uniform", description="Which one-token substitution a mutant makes: any, uniformly, "
        "or weighted by the novelty of the token pairs it writes (1 / sqrt(1 + how often the "
        "ledger's sequences hold each pair), the sequence's start counted as a token): a "
        "count bonus on local features, so that mutants try what no evaluation has tried; "
        "'novel-unscreened' weights only the mutants taken without the regions' test.")
    explore_filter: bool = Field(
        True, description="Explored candidates (neighbours, mutants) must pass the failure "
        "regions; False keeps only the ledger's test (an ablation: what the regions add).")
    explore_unscreened: float = Field(
        0.0, ge=0, le=1, description="Share of each round's mutants taken without the region "
        "test (new to the ledger all the same): exploration where the failure models "
        "generalise wrongly, e.g. onto a mode of successes that no region has seen succeed.")
    explore_unscreened_adapt: bool = Field(
        False, description="Set each round's unscreened share from the ledger: with the "
        "success rates so far (Beta(1, 1) means) of the mutants a region rejected yet that "
        "were evaluated, r_u, and of those the regions passed, r_k, the share is "
        "r_u / (r_u + r_k), kept within 0.1..0.9 (explore_unscreened is the share until a "
        "rejected mutant has been evaluated): the regions are trusted as far as they help.")
    explore_parents: Literal["uniform", "yield", "rare"] = Field(
        "uniform", description="How mutants pick the success they vary: uniformly; by "
        "their offspring's yield (the success rate of the success's mutants evaluated so far, "
        "shrunk towards all mutants' rate with 2 pseudo-counts); or by rarity (the mean over "
        "its positions of 1 / the number of successes holding its token there: fitness "
        "sharing, so that a success unlike the others gets more mutants). Both weights are "
        "times the share of its one-token substitutions the ledger does not hold yet.")
    explore_adapt: bool = Field(
        False, description="Set each round's mutation share from the ledger: with the "
        "mutants' and the posterior's candidates' success rates so far (Beta(1, 1) means) "
        "r_m and r_p, the share is r_m / (r_m + r_p), kept within 0.1..0.9 "
        "(explore_mutations is the share until a mutant has been evaluated).")


@dataclass
class BanelState:
    """The posterior in use: a proposal and the regions learned so far."""

    posterior: Posterior


class BanelMethod(RoundMethod):
    """BaNEL: learn failure models on negatives and sample the posterior that avoids them."""

    name = "banel"
    description = "Bayesian Negative Evidence Learning (failure models + rejection posterior)."
    Options: ClassVar[type[Options]] = BanelOptions
    #: 0.1.0 kept these sections at the top of the config.
    moved: ClassVar[dict[str, str]] = {"failure_model": "banel.failure_model",
                                       "posterior": "banel.posterior"}

    def check(self, p: Plan) -> None:
        o: BanelOptions = self.options
        if p.config.failures_only:  # the paper's protocol: no success enters any fit
            o.failure_model.success_weight = 0.0
            o.distill.success_share = o.distill.success_neighbours = 0.0
            o.posterior.guard_successes = o.train_on_positives = False
            o.explore_neighbours = o.explore_mutations = 0.0
            o.explore_crossover = o.explore_indel = 0.0
            o.explore_adapt = False
            o.explore_unscreened = 0.0
            o.explore_unscreened_adapt = False
            o.explore_parents = "uniform"
            o.explore_substitutions = "uniform"
            setattr(p.config, self.name, o.model_dump(mode="json"))  # recorded in config.yaml
        reg = p.host.registry
        fm = o.failure_model
        fb_cls = reg.get("failure_model", fm.name).obj
        self.failure_builder = fb_cls(validate_options(
            fb_cls.Options, fm.options, "banel.failure_model.options"))
        self.failure_builder.check(fm)
        if fm.success_weight > 0 and not fb_cls.accepts_counter_examples:
            raise ConfigError(f"invalid configuration: banel.failure_model.success_weight needs "
                              f"a builder that accepts counter-examples; {fm.name!r} does not")
        if fm.success_weight > 0 and o.train_on_positives:
            raise ConfigError("invalid configuration: banel.failure_model.success_weight and "
                              "banel.train_on_positives contradict each other (successes pushed "
                              "out of phi and fitted into it); set one")
        sc_cls = reg.get("posterior_scorer", o.posterior.name).obj
        validate_options(getattr(sc_cls, "Options", Options), o.posterior.options,
                         "banel.posterior.options")
        self.scorer = sc_cls(o.posterior)
        dc = o.distill
        if o.posterior.control_from != "current" and o.posterior.reference != "control":
            raise ConfigError("invalid configuration: banel.posterior.control_from needs "
                              "banel.posterior.reference=control")
        if o.guidance > 0 and o.posterior.reference == "mixture":
            raise ConfigError("invalid configuration: banel.guidance and "
                              "banel.posterior.reference=mixture cannot be combined (a guided "
                              "proposal is not saved to rebuild the mixture from)")
        if o.guidance > 0 and not hasattr(getattr(p.generator_cls, "module_cls", None),
                                          "guided_token_log_probs"):
            raise ConfigError(f"invalid configuration: banel.guidance needs a transformer "
                              f"generator; {p.generator_name!r} cannot be guided")
        if o.guidance > 0 and dc.prior_mix > 0:
            raise ConfigError("invalid configuration: banel.guidance and "
                              "banel.distill.prior_mix cannot be combined (a mixture is not guided)")
        if dc.success_neighbours > 0 and dc.success_share > 0 and \
                not getattr(p.generator_cls, "completes_prefixes", False):
            raise ConfigError(f"invalid configuration: banel.distill.success_neighbours needs a "
                              f"generator that completes prefixes; {p.generator_name!r} does not")
        if o.explore_neighbours + o.explore_mutations > 1:
            raise ConfigError("invalid configuration: banel.explore_neighbours + "
                              "banel.explore_mutations must be at most 1")
        if o.explore_crossover + o.explore_indel > 1:
            raise ConfigError("invalid configuration: banel.explore_crossover + "
                              "banel.explore_indel must be at most 1")
        if o.explore_unscreened_adapt and o.explore_unscreened <= 0:
            raise ConfigError("invalid configuration: banel.explore_unscreened_adapt needs "
                              "banel.explore_unscreened > 0 (the share until a rejected "
                              "mutant has been evaluated)")
        if o.explore_adapt and o.explore_mutations <= 0:
            raise ConfigError("invalid configuration: banel.explore_adapt needs "
                              "banel.explore_mutations > 0 (the share until a mutant has "
                              "been evaluated)")
        if o.explore_neighbours > 0 and not getattr(p.generator_cls, "completes_prefixes", False):
            raise ConfigError(f"invalid configuration: banel.explore_neighbours needs a "
                              f"generator that completes prefixes; {p.generator_name!r} does not")

    # -- the steps -------------------------------------------------------------------------

    def restore(self, run: Run) -> BanelState:
        last = None
        for last in replay(run, self):
            pass
        return BanelState(last.posterior if last else self._prior_posterior(run))

    def sampler(self, run: Run, state: BanelState) -> Posterior:
        return state.posterior

    def propose(self, run: Run, state: BanelState, r: int, n: int) -> Proposal:
        share, flips = self.options.explore_neighbours, self.options.explore_mutations
        if self.options.explore_adapt:
            flips = mutation_share(self.options, arm_record(run, r))
        known = successes_upto(run, r - 1) if share + flips > 0 else []
        screen = self.options.explore_filter
        near = neighbours(run, state.posterior, known, round(share * n), r, "explore",
                          self.options.explore_keep, filtered=screen) \
            if known and share > 0 else Samples.empty()
        tried: dict[str, Any] = {}
        ops = dict(crossover=self.options.explore_crossover, indel=self.options.explore_indel,
                   source=self.options.explore_alphabet,
                   novel=self.options.explore_substitutions == "novel")
        wide = self.options.explore_substitutions != "uniform"  # the unscreened mutants
        n_m = round(flips * n) if known and flips > 0 else 0
        loose = self.options.explore_unscreened
        if self.options.explore_unscreened_adapt:
            loose = unscreened_share(self.options, screen_record(run, r))
        n_u = round(loose * n_m) if screen else 0
        if n_m and self.options.explore_parents != "uniform":
            ops["weights"] = parent_weights(run, r, known, ops["source"],
                                            self.options.explore_parents)
        free = mutations(run, state.posterior, known, n_u, r, avoid=set(near.keys()),
                         stats=tried, filtered=False, tag="mutate-unscreened",
                         **{**ops, "novel": wide}) \
            if n_u > 0 else Samples.empty()
        unscreened = list(tried.pop("unscreened", []))
        rest = mutations(run, state.posterior, known, n_m - len(free), r,
                         avoid=set(near.keys()) | set(free.keys()), stats=tried,
                         filtered=screen, **ops) if n_m > len(free) else Samples.empty()
        mutated = Samples.cat([free, rest])
        near = Samples.cat([near, mutated])
        prop = draw_new(run, state.posterior, r, n - len(near), also=set(near.keys()))
        if len(near):
            prop.samples = Samples.cat([near, prop.samples])
            prop.stop = None
        prop.data["regions"] = len(state.posterior.regions)
        if share > 0:
            prop.data["explored_neighbours"] = len(near) - len(mutated)
        if flips > 0:
            prop.data["explored_mutations"] = len(mutated)
            prop.data["mutants_tried"] = tried.get("tried", 0)
            prop.data["mutants_rejected"] = tried.get("rejected", 0)
            prop.data["mutant_parents"] = tried.get("parents", [])
            if not screen or n_u > 0:  # evaluated all the same: the ablation's record
                prop.data["mutants_unscreened"] = unscreened + tried.get("unscreened", [])
            if n_u > 0:
                prop.data["explored_unscreened"] = len(free)
        if self.options.explore_unscreened_adapt:
            prop.data["unscreened_share"] = loose
        if self.options.explore_adapt:
            prop.data["mutation_share"] = flips
        return prop

    def learn(self, run: Run, state: BanelState, r: int, batch: Batch) -> dict[str, Any]:
        phi, data = self._fit_failure_model(run, state, r)
        if phi is not None:
            ref = data.pop("_reference")
            slack = data.pop("_calibrated", 0.0)
            if self.options.posterior.guard_successes:
                guard, data["guard_spared"] = self._guard(run, phi, ref, slack)
                slack = max(slack, guard)
            data["region_slack"] = slack
            state.posterior.regions.append(RejectionRegion(r, phi, ref, slack))
            windowed(state.posterior.regions, self.options.posterior.window)
            state.posterior = self.guide(state.posterior, phi)
        return data

    def guide(self, posterior: Posterior, phi: LogProbModel | None) -> Posterior:
        """With banel.guidance: the proposal's generator guided away from phi."""
        beta = self.options.guidance
        if beta <= 0 or phi is None:
            return posterior
        from .guided import Guided

        return posterior.with_proposal(Guided(trainable(posterior.proposal), phi, beta))

    def finish(self, run: Run, state: BanelState, r: int) -> dict[str, Any]:
        data: dict[str, Any] = {}
        dc = self.options.distill
        if dc.enabled and state.posterior.regions:
            acceptance = self._acceptance(run, state, r)
            data["acceptance_next"] = acceptance
            if acceptance < dc.acceptance_below:
                data.update(self._distill(run, state, r))
        rows = [d for q, _, d in run.ledger.rounds() if 1 < q <= r]
        message = advice([d.get("acceptance") for d in rows], self.options,
                         [d.get("successes", 0) for d in rows])
        if message:
            run.warn(f"round {r}: {message}")
        return data

    def final_distribution(self, run: Run) -> tuple[int, Posterior]:
        """The last posterior, or with banel.select=best-observed the posterior whose own
        candidates had the highest success rate in the ledger (round 0: the prior)."""
        states = [s for s in replay(run, self) if s.done]
        prior = self._prior_posterior(run)
        if self.options.select == "last" or not states:
            return (states[-1].round, states[-1].posterior) if states else (0, prior)
        best = observed_best(run)
        if best is None:
            return states[-1].round, states[-1].posterior
        return best, {st.round: st.posterior for st in states}.get(best, prior)

    # -- parts -----------------------------------------------------------------------------

    def _prior_posterior(self, run: Run) -> Posterior:
        return Posterior(run.prior, run.prior, self.scorer, [], self.temperature(run),
                         self.excluded(run))

    def temperature(self, run: Run) -> float:
        """The temperature the posterior's proposal is sampled at."""
        return self.options.temperature or run.config.rounds.temperature

    def excluded(self, run: Run):
        """The test for a key known to fail without an NRE: by the ledger
        (exclude_known_failures) or by the task's free check (exclude_invalid); None if off."""
        o = self.options
        if not (o.exclude_known_failures or o.exclude_invalid):
            return None
        ledger, codec, check = run.ledger, run.codec, free_check(run)

        @functools.lru_cache(maxsize=1 << 18)
        def invalid(key: str) -> bool:
            return not check(codec.decode(key_sequence(key)))

        def known_failure(key: str) -> bool:
            if o.exclude_invalid and invalid(key):
                return True
            if o.exclude_known_failures:
                reward = ledger.reward(key)
                return reward is not None and reward <= 0
            return False

        return known_failure

    def _reference(self, posterior: Posterior) -> Generator:
        return posterior.prior if self.options.posterior.reference == "prior" \
            else posterior.proposal

    def _parent(self, posterior: Posterior) -> Generator:
        return trainable(posterior.proposal) if self.options.failure_model.init == "proposal" \
            else posterior.prior

    def _fit_failure_model(self, run: Run, st: BanelState, r: int
                           ) -> tuple[LogProbModel | None, dict[str, Any]]:
        fm = self.options.failure_model
        this_round = run.ledger.evaluations(round_=r, status="done")
        own = [e.key for e in this_round if (e.reward or 0) <= 0]  # this round's failures
        evs = this_round if fm.data == "round" else run.ledger.evaluations(upto_round=r,
                                                                           status="done")
        keys = [e.key for e in evs if (e.reward or 0) <= 0 or self.options.train_on_positives]
        if not keys or len(own) < fm.min_failure_share * len(this_round):
            return None, {"failure_model": None, "phi_samples": len(keys)}
        pc = self.options.posterior
        held: list[str] = []
        if pc.calibrate is not None:  # negatives of this round the fit never sees
            gen = torch.Generator().manual_seed(run.seed(r, "holdout"))
            order = torch.randperm(len(own), generator=gen).tolist()
            held = [own[i] for i in order[:max(1, round(pc.holdout * len(own)))]] if own else []
            skip = set(held)
            keys = [k for k in keys if k not in skip]
        extra: dict[str, Any] = {}
        counter: list[str] = []
        if fm.success_weight > 0:  # known successes so far, as counter-examples
            counter = capped(successes_upto(run, r), fm.max_counter_examples,
                             run.seed(r, "counter_examples"))
            extra = {"counter_examples": Samples.from_keys(counter) if counter else None,
                     "counter_weight": fm.success_weight}
        phi, fit = self.failure_builder.fit(self._parent(st.posterior), Samples.from_keys(keys),
                                            fm.fit, from_scratch=fm.init == "scratch",
                                            seed=run.seed(r, "failure_model"), **extra)
        path = run.checkpoint(f"failure_model_r{r:03d}.pt")
        phi.save(path)
        extra_out: dict[str, Any] = {}
        ref: LogProbModel
        if pc.reference in ("control", "mixture"):
            fitted = set(keys)
            drew = Counter(e.round for e in evs if e.key in fitted)  # phi's data, by round
        if pc.reference == "control":
            ref, extra_out = self._fit_control(run, st, r, len(keys), drew)
        elif pc.reference == "mixture":  # the proposals phi's negatives came from
            ref = self._mixture(run, r, st.posterior.proposal, drew)
            extra_out["reference_weights"] = {str(q): n for q, n in sorted(drew.items())}
        else:
            ref = self._reference(st.posterior)
        if held:
            hs = Samples.from_keys(held)
            log_ref = ref.log_prob(hs).detach().cpu().float()
            log_phi = phi.log_prob(hs).detach().cpu().float()
            extra_out.update(_calibrated=calibrated_slack(self.scorer, log_ref, log_phi,
                                                          pc.calibrate),
                             holdout_negatives=len(held))
        extra_out["_reference"] = ref
        return phi, {**extra_out, "failure_model": _rel(run, path), "phi_samples": len(keys),
                     "phi_counter_examples": len(counter), "phi_epochs": fm.fit.epochs,
                     "phi_seconds": fit.seconds, "phi_steps": fit.steps,
                     "phi_loss": fit.final_loss}

    def _mixture(self, run: Run, r: int, current: Generator | None, drew: dict[int, int]
                 ) -> WeightedMixture:
        """The proposals that drew each round's candidates, weighted by the negatives each
        gave phi (round r's proposal is `current`, else read from the ledger)."""
        proposals = self._round_proposals(run, r, current)
        return WeightedMixture([(proposals[q], n) for q, n in sorted(drew.items())])

    def _round_proposals(self, run: Run, r: int, current: Generator | None
                         ) -> dict[int, Generator]:
        """The proposal each round up to r drew its candidates from (r's: `current`)."""
        proposals, proposal = {}, run.prior
        for q, _, data in run.ledger.rounds():
            if q > r:
                break
            proposals[q] = proposal
            if q < r and data.get("proposal_after"):
                proposal = self._load_proposal(run, data["proposal_after"])
        if current is not None:
            proposals[r] = current
        return proposals

    def _load_proposal(self, run: Run, rel: str, made: Generator | None = None) -> Generator:
        """A distilled proposal from its checkpoint (or `made`, the one just fitted); kept once
        per run where earlier rounds' proposals are used again (a mixture reference, a control
        drawn from each round), so that shared components are scored once a batch."""
        pc = self.options.posterior
        keep = pc.reference == "mixture" or pc.control_from == "rounds"
        cache = self.__dict__.setdefault("_proposals", {}) if keep else {}
        key = (str(run.run_dir), rel)
        if made is not None:
            cache[key] = made
        if key not in cache:
            cache[key] = mix(self.options.distill, load_generator(run.prior, run.run_dir / rel),
                             run.prior)
        return cache[key]

    def _fit_control(self, run: Run, st: BanelState, r: int, n: int, drew: dict[int, int]
                     ) -> tuple[LogProbModel, dict[str, Any]]:
        """The control reference: phi's recipe from phi's start on n fresh posterior samples
        that the ledger has not evaluated (no counter-examples); with control_from=rounds,
        drawn from each round's posterior in the shares phi's negatives came from."""
        fm, rc = self.options.failure_model, run.config.rounds
        if self.options.posterior.control_from == "rounds":
            proposals = self._round_proposals(run, r, st.posterior.proposal)
            parts, drawn, by_round = [], 0, {}
            for q, k in sorted(drew.items()):  # round q's posterior: the regions before q
                post = Posterior(st.posterior.prior, proposals[q], self.scorer,
                                 [g for g in st.posterior.regions if g.round < q],
                                 st.posterior.temperature, st.posterior.excluded)
                res = post.draw(k, seed=run.seed(r, "control", q),
                                batch_size=rc.draw_batch_size, max_draws=rc.max_draws_per_round,
                                exclude=run.is_known, unique=True)
                parts.append(res.samples)
                drawn += res.drawn
                by_round[str(q)] = len(res.samples)
            samples = Samples.cat(parts)
        else:
            by_round = None
            res = st.posterior.draw(n, seed=run.seed(r, "control"),
                                    batch_size=rc.draw_batch_size,
                                    max_draws=rc.max_draws_per_round, exclude=run.is_known,
                                    unique=True)
            samples, drawn = res.samples, res.drawn
        if len(samples) == 0:
            raise BanelError(f"round {r}: the posterior gave no fresh samples for the control "
                             f"reference in {drawn} proposals (banel.posterior.reference)")
        control, fit = self.failure_builder.fit(self._parent(st.posterior), samples, fm.fit,
                                                from_scratch=fm.init == "scratch",
                                                seed=run.seed(r, "control_fit"))
        path = run.checkpoint(f"control_r{r:03d}.pt")
        control.save(path)
        out = {"control_model": _rel(run, path), "control_samples": len(samples),
               "control_seconds": fit.seconds}
        if by_round is not None:
            out["control_rounds"] = by_round
        return control, out

    def _guard(self, run: Run, phi: LogProbModel, ref: Generator, base: float = 0.0
               ) -> tuple[float, int]:
        """The slack that keeps a new region off every success in the ledger, and how many
        successes it would have rejected without it (at slack `base`)."""
        keys = [e.key for e in run.ledger.solutions()]
        if not keys:
            return 0.0, 0
        known = Samples.from_keys(keys)
        log_ref = ref.log_prob(known).detach().cpu().float()
        log_phi = phi.log_prob(known).detach().cpu().float() - base
        spared = int(self.scorer.reject(log_ref, log_phi).sum())
        return base + guard_slack(self.scorer, log_ref, log_phi), spared

    def _acceptance(self, run: Run, st: BanelState, r: int) -> float:
        """Acceptance of the updated posterior: exact when possible, else from one probe batch."""
        ev = run.evaluator
        if ev.mode == "exact" and ev.support is not None:
            try:
                return st.posterior.acceptance(ev.support)
            except NotImplementedError:  # the proposal cannot score at this temperature
                pass
        size = run.config.rounds.draw_batch_size
        return st.posterior.draw(size, seed=run.seed(r, "probe"), batch_size=size,
                                 max_draws=size).acceptance

    def _distill(self, run: Run, st: BanelState, r: int) -> dict[str, Any]:
        """Fit a fresh proposal on posterior samples (no NREs); the filters still apply."""
        import time

        dc, rc = self.options.distill, run.config.rounds
        start = time.perf_counter()
        cap = min(rc.max_draws_per_round, dc.max_draws or 100 * dc.samples)
        res = st.posterior.draw(dc.samples, seed=run.seed(r, "distill"),
                                batch_size=rc.draw_batch_size, max_draws=cap, unique=dc.dedupe)
        out: dict[str, Any] = {"distill_drawn": res.drawn, "distill_samples": len(res.samples)}
        if res.capped and len(res.samples):
            run.log(f"round {r}: distilling on {len(res.samples)} of {dc.samples} samples, all "
                    f"the posterior gave in {res.drawn} proposals (banel.distill.max_draws)")
        if len(res.samples) == 0:
            run.log(f"round {r}: distillation skipped, the posterior gave no samples "
                    f"in {res.drawn} proposals")
            return out
        base = st.posterior.prior if dc.init == "prior" else trainable(st.posterior.proposal)
        distilled = base.clone()
        data, known, near = distill_data(run, dc, res.samples, r, st.posterior)
        fit = distilled.fit(data, dc.fit, seed=run.seed(r, "distill_fit"))
        out["distill_successes"] = known
        if dc.success_neighbours > 0:
            out["distill_neighbours"] = near
        path = run.checkpoint(f"proposal_r{r:03d}.pt")
        distilled.save(path)
        made = self._load_proposal(run, _rel(run, path), mix(dc, distilled, st.posterior.prior))
        st.posterior = self.guide(st.posterior.with_proposal(made),
                                  st.posterior.regions[-1].failure_model)
        out.update(distilled=True, proposal_after=_rel(run, path), distill_loss=fit.final_loss,
                   distill_seconds=time.perf_counter() - start)
        run.log(f"round {r}: distilled a new proposal on {len(res.samples)} posterior samples "
                f"(acceptance was {res.acceptance:.3g})")
        return out


#: Rounds in a row whose acceptance says the settings do nothing (or too much).
ADVICE_ROUNDS = 3


def advice(acceptances: list[float | None], o: BanelOptions,
           successes: list[int] | None = None) -> str | None:
    """What to change when the regions reject almost nothing, or almost everything while
    nothing is found, for ADVICE_ROUNDS rounds in a row (said once: when it first holds).
    Acceptance and successes of rounds 2..r."""
    acc = [a for a in acceptances if isinstance(a, (int, float)) and not math.isnan(a)]
    k = ADVICE_ROUNDS
    found = sum((successes or [])[-k:])
    if len(acc) < k:
        return None

    def holds(window: list[float], test) -> bool:
        return len(window) == k and all(test(a) for a in window)

    pc, fit = o.posterior, o.failure_model.fit
    if holds(acc[-k:], lambda a: a >= 0.95) and not holds(acc[-k - 1:-1], lambda a: a >= 0.95):
        return (f"the regions rejected almost nothing for {k} rounds (acceptance "
                f"{min(acc[-k:]):.2f}-{max(acc[-k:]):.2f}): phi does not tell this task's "
                f"failures apart. Set banel.posterior.calibrate=0.3 (a region then rejects 30% of "
                f"held-out failures), lower banel.posterior.filter_factor (now {pc.filter_factor:g})"
                f" or fit phi longer (banel.failure_model.fit.epochs, now {fit.epochs})")
    if holds(acc[-k:], lambda a: a < 0.01) and not holds(acc[-k - 1:-1], lambda a: a < 0.01) \
            and found == 0:
        return (f"the posterior accepted under 1% of proposals for {k} rounds (acceptance "
                f"{max(acc[-k:]):.2g} at most) and found nothing: sampling is slow and the "
                f"regions may reject successes too. Raise banel.posterior.filter_factor (now {pc.filter_factor:g}), "
                f"set banel.posterior.calibrate=0.3, or distil more often "
                f"(banel.distill.acceptance_below, now {o.distill.acceptance_below:g}"
                + ("" if o.distill.enabled else "; banel.distill.enabled is off") + ")")
    return None


class PretrainedMethod(RoundMethod):
    """The pretrained baseline: spend the budget on new prior samples, learn nothing."""

    name = "pretrained"
    description = "No update: sample the prior (new samples only), the reference rate."
    learns = False
    reference = True

    def restore(self, run: Run) -> None:
        return None

    def sampler(self, run: Run, state: None) -> Posterior:
        return Posterior(run.prior, run.prior, None, [], run.config.rounds.temperature)

    def propose(self, run: Run, state: None, r: int, n: int) -> Proposal:
        return draw_new(run, self.sampler(run, state), r, n)

    def learn(self, run: Run, state: None, r: int, batch: Batch) -> dict[str, Any]:
        return {"failure_model": None}


# -- rebuilding the posterior -----------------------------------------------------------------

@dataclass
class RoundState:
    """The posterior as it stood after one round (fitted: regions added, not yet distilled)."""

    round: int
    posterior: Posterior
    failure_model: LogProbModel | None
    done: bool


def replay(run: Run, method: BanelMethod | None = None) -> Iterator[RoundState]:
    """Rebuild the posterior round by round from the ledger and the checkpoints (nothing for a
    run of another method)."""
    method = method or run.method
    if not isinstance(method, BanelMethod):
        return
    prior = run.prior
    proposal: Generator = prior
    regions: list[RejectionRegion] = []
    excluded = method.excluded(run)
    for r, status, data in run.ledger.rounds():
        if status not in ("fitted", "done"):
            return
        phi = None
        post = Posterior(prior, proposal, method.scorer, regions, method.temperature(run),
                         excluded)
        if data.get("failure_model"):
            phi = method.failure_builder.load(method._parent(post),
                                              run.run_dir / data["failure_model"])
            if data.get("control_model"):
                ref = method.failure_builder.load(method._parent(post),
                                                  run.run_dir / data["control_model"])
            elif data.get("reference_weights"):
                ref = method._mixture(run, r, proposal, {int(q): n for q, n
                                                         in data["reference_weights"].items()})
            else:
                ref = method._reference(post)
            regions.append(RejectionRegion(r, phi, ref, data.get("region_slack", 0.0)))
            windowed(regions, method.options.posterior.window)
            proposal = method.guide(post, phi).proposal
        if status == "done" and data.get("proposal_after"):
            proposal = method._load_proposal(run, data["proposal_after"])
            last_phi = regions[-1].failure_model if regions else None
            proposal = method.guide(post.with_proposal(proposal), last_phi).proposal
        yield RoundState(r, Posterior(prior, proposal, method.scorer, list(regions),
                                      method.temperature(run), excluded), phi,
                         status == "done")
        if status != "done":
            return


def windowed(regions: list[RejectionRegion], window: int | None) -> None:
    """Drop all but the last `window` regions, in place (None: keep every region)."""
    if window is not None and len(regions) > window:
        del regions[:len(regions) - window]


def load_generator(template: Generator, path: Path) -> Generator:
    """A generator shaped like `template` with the weights saved at `path`."""
    model = template.fresh()
    model.load(path)
    return model


def mix(dc: DistillConfig, distilled: Generator, prior: Generator) -> Generator:
    """The distilled proposal, mixed with the prior when banel.distill.prior_mix > 0."""
    return Mixture(distilled, prior, dc.prior_mix) if dc.prior_mix > 0 else distilled


def successes_upto(run: Run, r: int) -> list[str]:
    """Keys of the ledger's successes found in rounds up to r."""
    return [e.key for e in run.ledger.solutions() if e.round <= r]


def capped(keys: list[str], cap: int | None, seed: int) -> list[str]:
    """At most cap of the keys, a seeded random subset in ledger order (all when cap is None)."""
    if cap is None or len(keys) <= cap:
        return keys
    pick = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed))[:cap]
    return [keys[i] for i in sorted(pick.tolist())]


def distill_data(run: Run, dc: DistillConfig, samples: Samples, r: int,
                 posterior: Posterior | None = None) -> tuple[Samples, int, int]:
    """Posterior samples and, with distill.success_share > 0, the ledger's successes up to
    round r (and, with success_neighbours, their neighbours), together about that share of
    the fit; returns (data, successes, neighbours)."""
    share = dc.success_share
    known = successes_upto(run, r) if share > 0 else []
    if not known:
        return samples, 0, 0
    total = round(share / (1 - share) * len(samples))  # rows of positive evidence
    near = Samples.from_keys([])
    if dc.success_neighbours > 0 and posterior is not None:
        near = neighbours(run, posterior, known, round(total * dc.success_neighbours), r)
    n_near = len(near)
    # repeated, not up-weighted: one large weight would inflate Adam's second moment and
    # freeze the very parameters it should move (measured on toy-1d)
    copies = max(1, round((total - n_near) / len(known)))
    parts = [samples, Samples.from_keys(known * copies)] + ([near] if n_near else [])
    return Samples.cat(parts), len(known), n_near


def neighbours(run: Run, posterior: Posterior, known: list[str], n: int, r: int,
               tag: str = "neighbours", keep: float = 0.0, filtered: bool = True) -> Samples:
    """Up to n distinct completions, by the current proposal, of random prefixes of the known
    successes (at least a share `keep` of each), kept when no failure region rejects them and
    the ledger has not evaluated them."""
    proposal = trainable(posterior.proposal)
    base = Samples.from_keys(known)
    gen = torch.Generator().manual_seed(run.seed(r, tag))
    kept: set[str] = set()
    rows: list[Samples] = []
    for attempt in range(8):  # a few batches; fewer neighbours rather than a long search
        pick = torch.randint(len(known), (max(n, 1) * 2,), generator=gen)
        prefixes = base.select(pick)
        lo = torch.ceil(keep * prefixes.lengths).long().clamp(min=1)
        cut = lo + (torch.rand(len(pick), generator=gen) * (prefixes.lengths - lo).clamp(min=1)).long()
        prefixes = Samples(prefixes.tokens, torch.minimum(cut, prefixes.lengths - 1).clamp(min=1))
        done = proposal.complete(prefixes, seed=run.seed(r, tag, attempt))
        rows.append(_keep_new(run, posterior, done, kept, n, filtered=filtered))
        if len(kept) >= n:
            break
    return Samples.cat(rows)


def mutations(run: Run, posterior: Posterior, known: list[str], n: int, r: int,
              avoid: set[str] = frozenset(), stats: dict[str, Any] | None = None,
              filtered: bool = True, crossover: float = 0.0, indel: float = 0.0,
              source: str = "successes", tag: str = "mutate",
              weights: list[float] | None = None, novel: bool = False) -> Samples:
    """Up to n distinct one-token substitutions of the known successes (tokens from those the
    successes use, or with `source="ledger"` from every sequence the ledger holds; a final
    token all successes share is kept), or, with chances `crossover` and `indel`, one-point
    crossovers of two of them and one-token insertions or deletions, kept when no failure
    region rejects them and the ledger has not evaluated them (`stats` counts those tried and
    rejected, and lists in "parents" the index in `known` of each kept mutant's success, a
    crossover's first; `weights`, one a success, makes the choice of that success weighted;
    `novel` weights each substitution by the novelty of the token pairs it writes)."""
    seqs = [key_sequence(k) for k in known]
    held = [key_sequence(e.key) for e in run.ledger.evaluations()] \
        if crossover or indel or novel or source == "ledger" else []
    pairs = pair_counts(held) if novel else None
    alphabet, term = substitutions(seqs, held, source)
    longest = max(map(len, held), default=0)  # the successes are in the ledger too
    rng = random.Random(run.seed(r, tag))
    kept: set[str] = set()
    rows: list[Samples] = []
    if weights is not None and not any(w > 0 for w in weights):
        weights = None
    for _ in range(8):  # a few batches; fewer mutants rather than a long search
        batch, parents = [], {}
        for _ in range(max(n, 1) * 2):
            p = rng.choices(range(len(seqs)), weights)[0] if weights else rng.randrange(len(seqs))
            s = list(seqs[p])
            room = len(s) - term
            if room < 1 or len(alphabet) < 2:
                continue
            u = rng.random() if crossover + indel > 0 else 1.0
            if u < crossover:  # a prefix of s, then the suffix of another success
                t = rng.choice(seqs)
                s = s[:rng.randint(1, room)] + t[rng.randint(0, len(t) - term):]
                if len(s) > longest:
                    continue
            elif u < crossover + indel:
                if rng.random() < 0.5 and room > 1:
                    del s[rng.randrange(room)]
                elif len(s) < longest:
                    s.insert(rng.randint(0, room), rng.choice(alphabet))
                else:
                    continue
            elif pairs is not None:
                i, t = novel_substitution(s, room, alphabet, pairs, rng)
                s[i] = t
            else:
                i = rng.randrange(room)
                s[i] = rng.choice([t for t in alphabet if t != s[i]])
            batch.append(s)
            parents.setdefault(sequence_key(s), p)
        if not batch:
            break
        rows.append(_keep_new(run, posterior, Samples.from_sequences(batch), kept, n, avoid,
                              stats, filtered))
        if stats is not None:
            stats.setdefault("parents", []).extend(parents[k] for k in rows[-1].keys())
        if len(kept) >= n:
            break
    return Samples.cat(rows)


#: The least and the most of a round's candidates that banel.explore_adapt gives to mutants.
ADAPT_BOUNDS = (0.1, 0.9)


def round_arms(run: Run, upto: int) -> Iterator[tuple[int, dict[str, Any], str, Evaluation]]:
    """(round, its record, arm, evaluation) of every done evaluation up to round `upto`, in
    NRE order; arm is "neighbours", "mutations" or "posterior" (a round's explored neighbours
    come first in the ledger, then its mutants, then the posterior's own candidates)."""
    data = {q: d for q, _, d in run.ledger.rounds() if q <= upto}
    seen: dict[int, int] = {}
    for e in run.ledger.evaluations(upto_round=upto):
        i = seen[e.round] = seen.get(e.round, -1) + 1
        d = data.get(e.round)
        if e.status != "done" or d is None:
            continue
        near = d.get("explored_neighbours") or 0
        flips = near + (d.get("explored_mutations") or 0)
        yield e.round, d, ("neighbours" if i < near else "mutations" if i < flips
                           else "posterior"), e


def arm_tallies(run: Run, upto: int) -> dict[int, dict[str, list[int]]]:
    """Per round up to `upto`: [NREs, successes] of its mutants and of the posterior's own
    candidates."""
    tallies = {q: {"mutations": [0, 0], "posterior": [0, 0]} for q, _, _ in run.ledger.rounds()
               if q <= upto}
    for q, _, arm, e in round_arms(run, upto):
        if arm in tallies[q]:
            tallies[q][arm][0] += 1
            tallies[q][arm][1] += (e.reward or 0) > 0
    return tallies


def arm_record(run: Run, r: int) -> dict[str, list[int]]:
    """[NREs, successes] of the mutants and of the posterior's own candidates in the rounds
    before r."""
    total = {"mutations": [0, 0], "posterior": [0, 0]}
    for tally in arm_tallies(run, r - 1).values():
        for arm, (n, k) in tally.items():
            total[arm][0] += n
            total[arm][1] += k
    return total


def screen_record(run: Run, r: int) -> dict[str, list[int]]:
    """[NREs, successes] of the mutants evaluated in the rounds before r: those a region
    rejected (taken unscreened) and those the regions passed."""
    total = {"rejected": [0, 0], "kept": [0, 0]}
    rejected: dict[int, set[str]] = {}
    for q, d, arm, e in round_arms(run, r - 1):
        if arm == "mutations":
            if q not in rejected:
                rejected[q] = set(d.get("mutants_unscreened") or ())
            side = total["rejected" if e.key in rejected[q] else "kept"]
            side[0] += 1
            side[1] += (e.reward or 0) > 0
    return total


#: The token before a sequence's first, for banel.explore_substitutions="novel".
START = -1


def pair_counts(seqs: list[list[int]]) -> Counter:
    """How many times each adjacent token pair occurs in `seqs` (START before the first)."""
    return Counter(pair for s in seqs for pair in zip([START, *s[:-1]], s))


def novel_substitution(s: list[int], room: int, alphabet: list[int], pairs: Counter,
                       rng: random.Random) -> tuple[int, int]:
    """A substitution (position < room, token) of s drawn in proportion to the novelty of the
    two token pairs it writes, each 1 / sqrt(1 + its count in `pairs`)."""
    options, weights = [], []
    for i in range(room):
        before = s[i - 1] if i else START
        after = s[i + 1] if i + 1 < len(s) else None
        for t in alphabet:
            if t != s[i]:
                w = 1 / math.sqrt(1 + pairs[before, t])
                if after is not None:
                    w += 1 / math.sqrt(1 + pairs[t, after])
                options.append((i, t))
                weights.append(w)
    return rng.choices(options, weights)[0]


def substitutions(seqs: list[list[int]], held: list[list[int]], source: str
                  ) -> tuple[list[int], bool]:
    """The tokens one-token substitutions of the successes `seqs` draw from (theirs, or with
    source="ledger" those of every sequence `held`) and whether their shared final token is
    kept."""
    term = len({s[-1] for s in seqs if s}) == 1
    ends = {s[-1] for s in seqs if s} if term else set()
    return sorted({t for s in held for t in s} - ends if source == "ledger"
                  else {t for s in seqs for t in (s[:-1] if term else s)}), term


def offspring_record(run: Run, r: int) -> dict[int, list[int]]:
    """[NREs, successes] of the evaluated mutants of each success (by its index among the
    ledger's successes) in the rounds before r (rounds that recorded mutant_parents)."""
    total: dict[int, list[int]] = {}
    j: dict[int, int] = {}
    for q, d, arm, e in round_arms(run, r - 1):
        if arm == "mutations":
            i = j[q] = j.get(q, -1) + 1
            parents = d.get("mutant_parents") or []
            if i < len(parents):
                side = total.setdefault(parents[i], [0, 0])
                side[0] += 1
                side[1] += (e.reward or 0) > 0
    return total


def parent_weights(run: Run, r: int, known: list[str], source: str,
                   by: str = "yield") -> list[float]:
    """banel.explore_parents: each known success's weight as a mutant's parent, its offspring's
    success rate shrunk towards all mutants' (2 pseudo-counts; by="yield") or its rarity among
    the successes (by="rare"), times the share of its one-token substitutions the ledger does
    not hold yet."""
    seqs = [key_sequence(k) for k in known]
    held = [key_sequence(e.key) for e in run.ledger.evaluations()] if source == "ledger" else []
    alphabet, term = substitutions(seqs, held, source)
    merit = rarity(seqs) if by == "rare" else offspring_yield(run, r, len(known))
    out = []
    for key, w in zip(known, merit):
        parts = key.split(",")
        swaps = [",".join(parts[:j] + [str(t)] + parts[j + 1:])
                 for j in range(len(parts) - term) for t in alphabet if str(t) != parts[j]]
        fresh = sum(not run.ledger.is_known(v) for v in swaps) / max(len(swaps), 1)
        out.append(w * fresh)
    return out


def offspring_yield(run: Run, r: int, n_known: int) -> list[float]:
    """Each success's mutants' success rate before round r, shrunk towards all mutants' rate
    (2 pseudo-counts; a success without mutants gets that rate)."""
    record = offspring_record(run, r)
    n_all = sum(n for n, _ in record.values())
    k_all = sum(k for _, k in record.values())
    m = (k_all + 1) / (n_all + 2)
    return [(k + 2 * m) / (n + 2) for n, k in (record.get(i, (0, 0)) for i in range(n_known))]


def rarity(seqs: list[list[int]]) -> list[float]:
    """Each sequence's mean over its positions of 1 / (how many of `seqs` hold its token at
    that position): near 1 for a sequence unlike the others, small inside a crowd."""
    counts = Counter((j, t) for s in seqs for j, t in enumerate(s))
    return [sum(1 / counts[j, t] for j, t in enumerate(s)) / max(len(s), 1) for s in seqs]


def adapted_share(this: list[int], other: list[int], start: float, cap: float = 1.0) -> float:
    """r / (r + r_other) from [NREs, successes] of two arms (Beta(1, 1) means), within
    ADAPT_BOUNDS and at most cap; `start` until `this` has been evaluated."""
    (n, k), (n_o, k_o) = this, other
    if n == 0:
        return start
    r, r_o = (k + 1) / (n + 2), (k_o + 1) / (n_o + 2)
    lo, hi = ADAPT_BOUNDS
    return min(max(r / (r + r_o), lo), hi, cap)


def unscreened_share(o: BanelOptions, tally: dict[str, list[int]]) -> float:
    """banel.explore_unscreened_adapt's share: r_u / (r_u + r_k), within ADAPT_BOUNDS."""
    return adapted_share(tally["rejected"], tally["kept"], o.explore_unscreened)


def mutation_share(o: BanelOptions, tally: dict[str, list[int]]) -> float:
    """banel.explore_adapt's share of mutants: r_m / (r_m + r_p), within ADAPT_BOUNDS."""
    return adapted_share(tally["mutations"], tally["posterior"], o.explore_mutations,
                         1 - o.explore_neighbours)


def _keep_new(run: Run, posterior: Posterior, cand: Samples, kept: set[str], n: int,
              avoid: set[str] = frozenset(), stats: dict[str, Any] | None = None,
              filtered: bool = True) -> Samples:
    """The candidates no region rejects (any, unless `filtered`), new to the ledger, to `kept`
    and to `avoid`, until `kept` holds n (it is updated); `stats` counts the new candidates
    looked at ("tried") and those a region rejected ("rejected"), and lists the keys of those
    taken all the same when not `filtered` ("unscreened")."""
    rejected, _ = posterior.reject_mask(cand)
    take = []
    for i, key in enumerate(cand.keys()):
        if len(kept) >= n:
            break
        if key in kept or key in avoid or run.ledger.is_known(key):
            continue
        if stats is not None:
            stats["tried"] = stats.get("tried", 0) + 1
            stats["rejected"] = stats.get("rejected", 0) + int(rejected[i])
            if rejected[i] and not filtered:
                stats.setdefault("unscreened", []).append(key)
        if filtered and rejected[i]:
            continue
        kept.add(key)
        take.append(i)
    return cand.select(take)


def observed_best(run: Run) -> int | None:
    """The posterior (by the round after which it stood; 0 = prior) whose candidates, drawn in
    the next round, had the highest success rate; ties go to the later one."""
    best, best_rate = None, -1.0
    for r, status, data in run.ledger.rounds():
        n = data.get("nre_round") or 0
        if status != "done" or n == 0:
            continue
        rate = (data.get("successes") or 0) / n
        if rate >= best_rate:
            best, best_rate = r - 1, rate
    return best if best_rate > 0 else None


def _rel(run: Run, path: Path) -> str:
    return str(path.relative_to(run.run_dir))


@hookimpl
def register_methods(register):
    register(BanelMethod.name, BanelMethod, default=True)
    register(PretrainedMethod.name, PretrainedMethod)
