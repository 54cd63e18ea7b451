"""addition-attack: the arithmetic, the oracle, and a quick run with tiny pretrained models."""

import json
import random
from collections import Counter

import pytest
from scipy.stats import binomtest
import torch
from banel_tasks.addition import AttackOracle, QueryCodec
from banel_tasks.addition.arith import (
    EOS,
    carry_chain,
    decode,
    encode,
    has_leading_zero,
    parse,
    propagate_run,
    random_queries,
)
from click.testing import CliRunner

from banel_framework.cli import main
from banel_plugins.banel import (
    BanelOptions,
    arm_record,
    mutation_share,
    mutations,
    novel_substitution,
    offspring_record,
    pair_counts,
    parent_weights,
    rarity,
    round_arms,
    screen_record,
    unscreened_share,
    neighbours,
)
from banel_framework.run import open_run
from banel_framework.samples import Samples, key_sequence

TINY = ["--task", "addition-attack", "-q", "--set", "task_options.target.steps=20",
        "--set", "task_options.attacker.queries=3000", "--set", "eval.samples=200",
        "--set", "eval.prior_samples=400", "--set", "rounds.samples_per_round=40",
        "--set", "eval.final_samples=400", "--set", "rounds.draw_batch_size=256"]


def test_parse_validates_syntax_lengths_and_leading_zeros():
    assert parse("12+345=", 5, True) == (12, 345)
    assert parse("007+5=", 5, True) == (7, 5)
    assert parse("007+5=", 5, False) is None
    assert parse("0+5=", 5, False) == (0, 5)  # a lone zero is not a leading zero
    for bad in ("12+345", "+3=", "1++2=", "123456+1=", "1+2=3", ""):
        assert parse(bad, 5, True) is None, bad
    assert has_leading_zero("05") and not has_leading_zero("0") and not has_leading_zero("50")


def test_carry_chains():
    assert carry_chain(99999, 1) == 5
    assert carry_chain(123, 456) == 0
    assert carry_chain(19, 1) == 1
    assert carry_chain(95, 5) == 2


def test_propagate_runs():
    assert propagate_run(7, 6993) == 2  # 3+7 makes the carry, two 9s pass it on: 7000
    assert propagate_run(0, 7999) == 3  # three 9s and no carry: 7999
    assert propagate_run(45, 54) == 2 and propagate_run(99999, 0) == 5
    assert propagate_run(123, 456) == 1 and propagate_run(12, 34) == 0 and propagate_run(0, 0) == 0
    from banel_tasks.addition.report import describe

    d = describe(["7+6993=", "0+7999=", "12+34=", "1+02=", "1+2+3="], 5)
    assert (d["n"], d["valid"], d["leading_zero_share"]) == (5, 4, 0.25)
    assert d["propagate_run"] == {"0": 0.5, "2": 0.25, "3": 0.25}


def test_codec_and_training_queries():
    assert decode(encode("12+3=") + [EOS]) == "12+3="
    assert QueryCodec().encode("7+8=") == encode("7+8=") + [EOS]
    pairs = random_queries(5000, 3, torch.Generator().manual_seed(0))
    assert all(0 <= a < 1000 and 0 <= b < 1000 for a, b in pairs)
    lengths = torch.tensor([len(str(a)) for a, _ in pairs])
    assert set(lengths.tolist()) == {1, 2, 3}
    assert abs(float((lengths == 3).float().mean()) - 1 / 3) < 0.03


class Adder:
    """A stand-in target that answers correctly except for operands equal to 7."""

    def answer(self, queries):
        out = []
        for q in queries:
            a, b = decode(q)[:-1].split("+")
            out.append("0" if 7 in (int(a), int(b)) else "0" + str(int(a) + int(b)))
        return out


def test_oracle_rewards_wrong_answers_to_valid_queries_only():
    # the stand-in answers with a leading zero: numerically right, so not a success
    texts = ["1+2=", "7+1=", "07+1=", "1+2", "123456+1="]
    samples = Samples.from_sequences(QueryCodec().encode(t) for t in texts)
    assert AttackOracle(Adder(), 5, True, "value")(samples, texts) == [0, 1, 1, 0, 0]
    assert AttackOracle(Adder(), 5, False, "value")(samples, texts) == [0, 1, 0, 0, 0]
    # read as text (the default), '03' is not the sum 3: every valid query it answers is wrong
    assert AttackOracle(Adder(), 5, True)(samples, texts) == [1, 1, 1, 0, 0]


def test_rarity_favours_the_success_unlike_the_others():
    crowd = [[5, 9, 6, d, 10] for d in range(8)]
    odd = [0, 9, 6, 8, 10]  # a leading zero where every other success holds a 5
    w = rarity(crowd + [odd])
    assert w[-1] == max(w) and w[-1] > 1.5 * max(w[:-1])
    assert len(set(w[:-1])) == 1  # alike but for one position each: alike weights
    assert rarity([[1, 2, 3]]) == [1.0]


def test_novel_substitutions_favour_token_pairs_the_ledger_lacks():
    held = [[5, 9, 6, d, 10] for d in range(1, 10)] * 20  # 1-9 after 6, never 0
    rng = random.Random(0)
    draws = Counter(novel_substitution([5, 9, 6, 1, 10], 4, list(range(10)), pair_counts(held),
                                       rng) for _ in range(20000))
    assert (3, 1) not in draws and (0, 5) not in draws  # a substitution changes the token
    held_there = sum(draws[3, t] for t in range(2, 10)) / 8  # pairs (6, t), (t, 10): 20 each
    assert draws[3, 0] > 3 * held_there  # (6, 0) and (0, 10) are new: weight 2 against 0.44
    assert draws[0, 0] > 3 * held_there  # so are (start, 0) and (0, 9)


def test_quick_run_with_tiny_pretrained_models(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "--budget", "120", *TINY,
                                    "--set", "banel.distill.acceptance_below=1.0",
                                    "--set", "banel.distill.samples=300",
                                    "--set", "banel.distill.success_neighbours=0.5",
                                    "--set", "banel.explore_neighbours=0.5",
                                    "--set", "banel.explore_mutations=0.2",
                                    "--set", "banel.explore_adapt=true",
                                    "--set", "banel.explore_unscreened=0.5",
                                    "--set", "banel.explore_unscreened_adapt=true",
                                    "--set", "banel.explore_parents=yield",
                                    "--set", "banel.explore_substitutions=novel-unscreened"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    s = json.loads((out / "summary.json").read_text())
    assert s["nre_used"] == 120 and s["rounds"] == 3
    assert s["eval"]["mode"] == "sampled" and s["eval"]["prior"]["n"] == 400
    final = s["eval"]["final"]
    assert final["rate"] == final["k"] / final["n"]
    exact = binomtest(final["k"], final["n"]).proportion_ci(0.95, method="exact")
    assert final["ci"] == pytest.approx([exact.low, exact.high], abs=1e-9)
    modes = json.loads((out / "plots" / "failure_modes.json").read_text())
    assert modes["successes"]["n"] == s["solutions_found"]
    assert sum(modes["prior"]["propagate_run"].values()) == pytest.approx(1.0)
    assert (out / "plots" / "failure_modes.png").is_file()

    # the successes' neighbours: completions of their prefixes, new to the ledger, not rejected
    run = open_run(out)
    rows = [d for _, _, d in run.ledger.rounds()]
    assert all(d["distilled"] and d["distill_neighbours"] > 0 for d in rows)
    # explore_neighbours: half of each later round's NREs go to new neighbours of successes
    assert rows[0]["explored_neighbours"] == 0  # no success is known before round 1
    assert all(0 < d["explored_neighbours"] <= 20 for d in rows[1:])
    keys = [e.key for e in run.ledger.evaluations()]
    assert len(keys) == len(set(keys)) == 120  # none paid twice
    # explore_adapt: each round's mutation share follows the arms' success rates in the ledger
    for r, d in enumerate(rows, start=1):
        assert d["mutation_share"] == mutation_share(run.method.options, arm_record(run, r))
        assert d["explored_mutations"] <= round(d["mutation_share"] * 40)
        # every new mutant looked at was evaluated unless a region rejected it, except that
        # explore_unscreened takes half of them (rounded) without the regions' test
        taken = d.get("mutants_unscreened", [])
        assert d["mutants_tried"] - d["mutants_rejected"] + len(taken) == d["explored_mutations"]
        n_m = round(d["mutation_share"] * 40) if r > 1 else 0
        # explore_unscreened_adapt: the share follows the rejected and kept mutants' rates
        assert d["unscreened_share"] == unscreened_share(run.method.options,
                                                          screen_record(run, r))
        assert d.get("explored_unscreened", 0) <= round(d["unscreened_share"] * n_m)
        assert all(run.ledger.is_known(k) for k in taken)  # evaluated all the same
    # explore_parents=yield: each evaluated mutant is a one-token substitution of the success
    # its round recorded as its parent, and the record adds up to the mutants evaluated
    solved = [e.key for e in run.ledger.solutions()]
    for q, d, arm, e in round_arms(run, len(rows)):
        if arm == "mutations":
            assert len(d["mutant_parents"]) == d["explored_mutations"]
    for r in range(1, len(rows) + 2):
        record = offspring_record(run, r)
        assert sum(n for n, _ in record.values()) == sum(
            d["explored_mutations"] for d in rows[:r - 1])
        assert all(0 <= k <= n for n, k in record.values())
    j = {}
    for q, d, arm, e in round_arms(run, len(rows)):
        if arm == "mutations":
            j[q] = j.get(q, -1) + 1
            parent = key_sequence(solved[d["mutant_parents"][j[q]]])
            child = key_sequence(e.key)
            assert len(child) == len(parent) and sum(a != b for a, b in zip(child, parent)) == 1
    w = parent_weights(run, len(rows) + 1, solved, "successes")
    assert len(w) == len(solved) and all(0 <= x < 1 for x in w)
    # a success whose every one-token substitution the ledger holds gets no weight
    alphabet = sorted({t for k in solved for t in key_sequence(k)[:-1]})
    for key, x in zip(solved, w):
        seq = key_sequence(key)
        new = [v for i in range(len(seq) - 1) for t in alphabet if t != seq[i]
               for v in [seq[:i] + [t] + seq[i + 1:]]
               if not run.ledger.is_known(",".join(map(str, v)))]
        assert (x > 0) == bool(new)
    # explore_parents=rare: the same untried share times a rarity that is never 0
    rare = parent_weights(run, len(rows) + 1, solved, "successes", "rare")
    assert len(rare) == len(solved) and all(0 <= x <= 1 for x in rare)
    assert [x > 0 for x in rare] == [x > 0 for x in w]
    seq, saved = key_sequence(solved[0]), dict(run.ledger._known)
    for i in range(len(seq) - 1):  # mark all of the first success's substitutions as known
        for t in alphabet:
            if t != seq[i]:
                run.ledger._known.setdefault(",".join(map(str, seq[:i] + [t] + seq[i + 1:])), 0.0)
    assert parent_weights(run, len(rows) + 1, solved, "successes")[0] == 0.0
    run.ledger._known = saved
    assert rows[0]["mutation_share"] == 0.2  # no mutant evaluated yet
    assert any(d["explored_mutations"] > 0 for d in rows[1:])
    assert any(d.get("explored_unscreened", 0) > 0 for d in rows[1:])
    st = run.method.restore(run)
    known = [e.key for e in run.ledger.solutions()]
    near = neighbours(run, st.posterior, known, 30, 99)
    assert 0 < len(near) <= 30 and len(set(near.keys())) == len(near)
    new_keys = near.keys()
    assert not any(run.ledger.is_known(k) for k in new_keys)
    for region in st.posterior.regions:  # scored one by one, outside the sampler's early exit
        log_phi = region.failure_model.log_prob(near) - region.slack
        assert not run.method.scorer.reject(region.reference.log_prob(near), log_phi).any()
    seqs = [tuple(map(int, k.split(","))) for k in known]
    assert all(any(tuple(n[:1]) == s[:1] for s in seqs) for n in near.sequences())
    # explore_mutations: one-token substitutions of successes, new and not rejected
    flips = mutations(run, st.posterior, known, 30, 99)
    assert 0 < len(flips) <= 30 and len(set(flips.keys())) == len(flips)
    assert not any(run.ledger.is_known(k) for k in flips.keys())
    assert not st.posterior.reject_mask(flips)[0].any()
    assert all(any(len(f) == len(s) and sum(a != b for a, b in zip(f, s)) == 1 for s in seqs)
               for f in map(tuple, flips.sequences()))
    # weights: a success with all the weight is every mutant's parent
    stats = {}
    one = mutations(run, st.posterior, known, 20, 99, stats=stats, filtered=False,
                    weights=[0.0] * (len(known) - 1) + [1.0])
    assert len(one) > 0 and stats["parents"] == [len(known) - 1] * len(one)
    assert all(sum(a != b for a, b in zip(m, seqs[-1])) == 1 for m in one.sequences())
    # explore_crossover / explore_indel: recombinations and one-token indels of successes
    mixed = mutations(run, st.posterior, known, 60, 99, crossover=0.5, indel=0.5)
    assert 0 < len(mixed) <= 60 and not st.posterior.reject_mask(mixed)[0].any()
    assert not any(run.ledger.is_known(k) for k in mixed.keys())
    longest = max(len(key_sequence(e.key)) for e in run.ledger.evaluations())
    end = {s[-1] for s in seqs}
    assert all(len(m) <= longest and m[-1] in end for m in mixed.sequences())

    def made(m: tuple) -> bool:  # a prefix of one success and a suffix of another, or one indel
        cross = any(m[:i] == s[:i] and any(m[i:] == t[j:] for t in seqs for j in range(len(t)))
                    for s in seqs for i in range(1, len(m)))
        indel = any(abs(len(m) - len(s)) == 1 and any(
            (m[:i] + m[i + 1:] == s) or (s[:i] + s[i + 1:] == m) for i in range(len(m)))
            for s in seqs)
        return cross or indel
    assert all(made(tuple(m)) for m in mixed.sequences())
    assert any(len(m) != len(s) for m in mixed.sequences() for s in seqs[:1])
    # explore_alphabet=ledger: substitutions may use tokens no success holds
    wide = mutations(run, st.posterior, known[:1], 200, 99, source="ledger", filtered=False)
    narrow = set(seqs[0])
    seen = {t for e in run.ledger.evaluations() for t in key_sequence(e.key)}
    assert {t for m in wide.sequences() for t in m} <= seen
    assert {t for m in wide.sequences() for t in m} - narrow
    # explore_filter=false (the ablation): mutants the regions reject are kept, and listed
    stats = {}
    loose = mutations(run, st.posterior, known, 30, 99, stats=stats, filtered=False)
    assert len(loose) >= len(flips) and stats["tried"] == len(loose)
    screened_out = st.posterior.reject_mask(loose)[0]
    assert sorted(stats.get("unscreened", [])) == sorted(
        k for k, out in zip(loose.keys(), screened_out.tolist()) if out)
    # explore_keep: each neighbour keeps at least that share of a success as its prefix
    long = neighbours(run, st.posterior, known, 30, 99, "explore", keep=0.7)
    assert len(long) > 0
    assert all(any(len(s) >= 2 and tuple(n[:max(1, -(-7 * len(s) // 10))]) ==
                   s[:max(1, -(-7 * len(s) // 10))] for s in seqs) for n in long.sequences())


def test_unscreened_share_trusts_the_regions_as_far_as_they_help():
    o = BanelOptions(explore_mutations=0.5, explore_unscreened=0.2, explore_unscreened_adapt=True)
    assert unscreened_share(o, {"rejected": [0, 0], "kept": [50, 5]}) == 0.2  # nothing yet
    blind = {"rejected": [98, 9], "kept": [98, 9]}  # rejected mutants succeed as often
    assert unscreened_share(o, blind) == pytest.approx(0.5)
    sharp = {"rejected": [200, 0], "kept": [200, 60]}  # the regions reject only failures
    assert unscreened_share(o, sharp) == 0.1  # the floor: they are still checked
    wrong = {"rejected": [200, 80], "kept": [200, 0]}
    assert unscreened_share(o, wrong) == 0.9


def test_mutation_share_matches_the_arms_success_rates():
    o = BanelOptions(explore_mutations=0.3, explore_adapt=True)
    nothing = {"mutations": [0, 0], "posterior": [100, 5]}
    assert mutation_share(o, nothing) == 0.3  # no mutant evaluated: the starting share
    even = {"mutations": [98, 5], "posterior": [98, 5]}
    assert mutation_share(o, even) == pytest.approx(0.5)
    assert mutation_share(o, {"mutations": [100, 60], "posterior": [900, 2]}) == 0.9
    assert mutation_share(o, {"mutations": [300, 0], "posterior": [100, 50]}) == 0.1
    o.explore_neighbours = 0.5  # the two shares add up to at most 1
    assert mutation_share(o, {"mutations": [100, 60], "posterior": [900, 2]}) == 0.5


def test_explore_adapt_needs_a_starting_share(tmp_path):
    res = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "r"), "-q",
                                    "--set", "banel.explore_adapt=true"])
    assert res.exit_code == 2 and "banel.explore_adapt needs banel.explore_mutations > 0" in res.output
    res = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "u"), "-q",
                                    "--set", "banel.explore_unscreened_adapt=true"])
    assert res.exit_code == 2 and "needs banel.explore_unscreened > 0" in res.output


def test_leading_zero_option_changes_the_oracle(tmp_path):
    from banel_framework.run import plan, task_context

    p = plan([{"task": "addition-attack",
               "task_options": {"allow_leading_zeros": False, "target": {"steps": 5}}}])
    oracle = p.task.oracle(task_context(p, progress=False))
    assert oracle.allow_leading_zeros is False


@pytest.mark.parametrize("bad, field", [("task_options.max_digits=0", "task_options.max_digits"),
                                        ("task_options.target.stepz=3", "task_options.target.stepz")])
def test_bad_task_options_are_named(tmp_path, bad, field):
    res = CliRunner().invoke(main, ["run", "--task", "addition-attack", "--out",
                                    str(tmp_path / "r"), "--set", bad])
    assert res.exit_code == 2 and field in res.stderr


def test_shipped_checkpoints_load_without_training(tmp_path, monkeypatch):
    """The default target and attacker come with the package: nothing is trained on first use."""
    from banel_tasks.addition import SHIPPED

    from banel_framework.run import plan, task_context

    monkeypatch.setenv("BANEL_CACHE", str(tmp_path / "cache"))
    assert sorted(p.suffix for p in SHIPPED.iterdir()) == [".json", ".json", ".pt", ".pt"]
    p = plan([{"task": "addition-attack", "progress": False}])
    ctx = task_context(p, progress=False)
    target = p.task.target_model(ctx)
    assert target.answer([encode("12345+678="), encode("7+8=")]) == ["13023", "15"]
    prior = p.task.prior(ctx)
    texts = p.task.codec().decode_batch(prior.sample(200, seed=0))
    assert sum(parse(t, 5, True) is not None for t in texts) >= 190  # plausible queries
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pt"))


def test_shipped_target_copies_a_leading_zero_which_only_the_text_check_counts_wrong(
        tmp_path, monkeypatch):
    """The measured failure mode of answer_check=text: a zero in front of the operand that sets
    the answer's length is copied into the sum, right as a number, wrong as text."""
    from banel_framework.run import plan, task_context

    monkeypatch.setenv("BANEL_CACHE", str(tmp_path / "cache"))
    checks = {}
    for check in ("value", "text"):
        p = plan([{"task": "addition-attack", "progress": False,
                   "task_options": {"answer_check": check}}])
        ctx = task_context(p, progress=False)
        rng = random.Random(0)
        texts = [f"{rng.randrange(1, 10)}+0{rng.randrange(100, 1000)}=" for _ in range(100)]
        samples = Samples.from_sequences(QueryCodec().encode(t) for t in texts)
        checks[check] = p.task.oracle(ctx)(samples, texts)
        plain = ["12345+678=", "7+8=", "4021+77="]
        assert p.task.oracle(ctx)(Samples.from_sequences(QueryCodec().encode(t) for t in plain),
                                  plain) == [0.0, 0.0, 0.0]
    # measured: 97% of such queries wrong as text (benchmarks/leading_zero_probe.py)
    assert sum(checks["text"]) >= 80
    assert sum(checks["value"]) <= 45  # 29 of these 100 are wrong as numbers too
    assert all(t >= v for t, v in zip(checks["text"], checks["value"]))


def test_longer_valid_operands_expose_the_shipped_targets_length_failure(tmp_path, monkeypatch):
    """valid_max_digits past max_digits admits operands the target never saw: it cannot read them."""
    from banel_framework.run import plan, task_context

    monkeypatch.setenv("BANEL_CACHE", str(tmp_path / "cache"))
    rng = random.Random(0)
    long = [f"{rng.randrange(10**5, 10**6)}+{rng.randrange(1, 10**5)}=" for _ in range(50)]
    plain = ["12345+678=", "7+8=", "4021+77="]
    texts = long + plain
    samples = Samples.from_sequences(QueryCodec().encode(t) for t in texts)
    rewards = {}
    for valid in (None, 8):
        p = plan([{"task": "addition-attack", "progress": False,
                   "task_options": {"allow_leading_zeros": False, "valid_max_digits": valid}}])
        rewards[valid] = p.task.oracle(task_context(p, progress=False))(samples, texts)
    assert rewards[None] == [0.0] * len(texts)  # six digits: invalid, and plain ones right
    assert sum(rewards[8][:50]) >= 45 and rewards[8][50:] == [0.0, 0.0, 0.0]  # measured: 500/500


def test_target_pretraining_stops_at_the_held_out_error():
    from banel_tasks.addition.target import train_target

    kw = {"d_model": 16, "n_layers": 1, "n_heads": 2, "steps": 40, "batch_size": 16,
          "lr": 1e-3, "warmup": 5, "progress": False, "check_every": 20}
    easy = train_target(3, 0, stop_error=1.0, **kw)  # any error passes: stop at the first check
    assert easy.stopped_at == 20 and [c["step"] for c in easy.checks] == [20]
    hard = train_target(3, 0, stop_error=1e-9, **kw)  # never reached: the whole schedule
    assert hard.stopped_at == 40 and [c["step"] for c in hard.checks] == [20, 40]


def test_guided_proposal_moves_away_from_phi_and_resumes_to_the_same_ledger(tmp_path):
    from banel_plugins.guided import Guided

    args = [*TINY, "--failures-only", "--set", "banel.guidance=2.0",
            # the tiny target answers most valid queries right: the failures are malformed ones
            "--set", "banel.exclude_invalid=false", "--set", "rounds.free_check=false",
            "--set", "banel.distill.enabled=false", "--set", "eval.samples=100",
            "--set", "eval.every=100", "--set", "rounds.draw_batch_size=256",
            "--set", "eval.final_samples=200"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    for out, budget in ((whole, 80), (part, 40)):
        res = CliRunner().invoke(main, ["run", "--out", str(out), "--budget", str(budget), *args])
        assert res.exit_code == 0, res.output + repr(res.exception)
    res = CliRunner().invoke(main, ["resume", str(part), "--budget", "80", "-q"])
    assert res.exit_code == 0, res.output
    keys = [[e.key for e in open_run(d).ledger.evaluations()] for d in (whole, part)]
    assert keys[0] == keys[1] and len(set(keys[0])) == 80  # replay rebuilt the same proposal
    run = open_run(whole)
    post = run.method.restore(run).posterior
    assert isinstance(post.proposal, Guided) and post.proposal.beta == 2.0
    phi = post.regions[-1].failure_model
    assert post.proposal.phi is phi  # guided by the latest failure model
    draws = post.proposal.sample(1000, seed=5)
    prior = run.prior.sample(1000, seed=5)
    gap = lambda s: float((run.prior.log_prob(s) - phi.log_prob(s)).mean())  # noqa: E731
    assert gap(draws) > gap(prior)  # more like the prior than like the failures
    assert torch.allclose(post.proposal.log_prob(draws), draws.log_prob, atol=1e-3)


def test_exclude_invalid_keeps_sure_failures_out_of_the_posterior_and_the_ledger(tmp_path):
    """banel.exclude_invalid: the task's free check (Task.valid) is an exact region."""
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "--budget", "80", *TINY,
                                    "--failures-only", "--set", "banel.exclude_invalid=true",
                                    "--set", "task_options.allow_leading_zeros=false"])
    assert res.exit_code == 0, res.output
    run = open_run(out)
    task = run.task
    assert task.valid("12+345=") and not task.valid("012+3=") and not task.valid("1+2==")
    assert not task.valid("123456+1=")  # longer than a valid operand
    texts = [e.text for e in run.ledger.evaluations()]
    assert len(texts) == 80 and all(task.valid(t) for t in texts)
    post = run.method.restore(run).posterior
    probe = Samples.from_sequences(run.codec.encode(t) for t in
                                   ["12+345=", "012+3=", "1+2==", "+=", "123456+1="])
    rejected, by_region = post.reject_mask(probe)
    assert rejected[1:].all() and by_region[0] >= 4  # 0: excluded outright, before the regions
    draws = post.proposal.sample(2000, seed=1)
    bad = [not task.valid(t) for t in run.codec.decode_batch(draws)]
    assert any(bad)  # the proposal still makes some, so the check above had work to do
    kept = (~post.reject_mask(draws)[0]).nonzero().squeeze(1).tolist()
    assert kept and not any(bad[i] for i in kept)


def test_free_check_answers_sure_failures_without_an_nre_for_any_method(tmp_path):
    """rounds.free_check: samples the task's check fails are failures that cost no NRE."""
    def hot_run(method, budget):
        out = tmp_path / method
        res = CliRunner().invoke(main, ["run", "--out", str(out), "--budget", str(budget), *TINY,
                                        "--method", method, "--set", "rounds.free_check=true",
                                        "--set", "rounds.temperature=2.0",
                                        "--set", "task_options.allow_leading_zeros=false"])
        assert res.exit_code == 0, res.output
        return open_run(out)

    run = hot_run("reinforce", 120)
    texts = [e.text for e in run.ledger.evaluations()]
    assert len(texts) == 120 and all(run.task.valid(t) for t in texts)
    rounds = [d for _, _, d in run.ledger.rounds() if "batch" in d]
    free = sum(d["free_failures"] for d in rounds)
    assert free > 0  # the hot policy drew sure failures, and none of them was paid for
    learned = [k for d in rounds for k in d["batch"]]
    bad = [k for k in learned if not run.task.valid(run.codec.decode(key_sequence(k)))]
    assert len(bad) >= free  # ... but the policy learned from them, at reward 0
    assert all(run.known_key(k) is None for k in bad)
    for d in rounds:
        assert d["new_candidates"] + d["duplicates"] + d["free_failures"] == d["proposals_drawn"]
    # a method that draws new candidates (here the prior's): full rounds of valid ones
    run = hot_run("pretrained", 80)
    assert all(run.task.valid(e.text) for e in run.ledger.evaluations())
    rows = [d for _, _, d in run.ledger.rounds()]
    assert [d["new_candidates"] for d in rows] == [40, 40] and all(d["free_failures"] for d in rows)
