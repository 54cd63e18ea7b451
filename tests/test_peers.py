"""The peers BaNEL is compared with: nsr / w-reinforce (negatives-led policy gradient) and ga."""

import json
import random
import sqlite3
from pathlib import Path

import pytest
import torch
from banel_plugins.ga import GaMethod, GaOptions, GaState
from banel_plugins.nsr import NsrMethod, NsrOptions, WReinforceMethod
from banel_plugins.policy_gradient import PolicyState
from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.run import open_run

FAST = ["-q", "--set", "trainer.num_threads=1"]


def run_cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def ledger_keys(run_dir: Path) -> list[str]:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return [k for (k,) in con.execute("SELECT key FROM evaluations ORDER BY id")]


def rounds(run_dir: Path) -> list[dict]:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return [json.loads(d) for (d,) in con.execute("SELECT data FROM rounds ORDER BY round")]


def test_nsr_weights_failures_minus_one_and_successes_lambda():
    extrinsic = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    st = PolicyState(None, None, None)
    adv, base = NsrMethod(NsrOptions()).advantage(st, extrinsic.clone(), extrinsic)
    assert adv.tolist() == [-1.0, 0.0, -1.0] and base is None
    adv, _ = WReinforceMethod().advantage(st, extrinsic - 0.5, extrinsic)  # a KL penalty of 0.5
    assert adv.tolist() == pytest.approx([-1.5, -0.4, -1.5])


def test_nsr_learns_from_failures_alone_and_moves_mass_to_unseen_samples(tmp_path):
    out = tmp_path / "nsr"
    run_cli("run", "--out", out, "--method", "nsr", "--budget", "500", *FAST,
            "--set", "task_options.success_above=5", "--set", "rounds.max_rounds=8",
            "--set", "nsr.lr=0.3")
    s = json.loads((out / "summary.json").read_text())
    assert s["solutions_found"] == 0 and s["method"] == "nsr"
    assert all(d["fit_steps"] == 1 for d in rounds(out))  # no success, yet every round moves
    run = open_run(out)
    support = run.task.support()
    unseen = [i for i, k in enumerate(support.keys()) if not run.ledger.is_known(k)]
    policy = run.method.distribution(run).probabilities(support)
    prior = torch.softmax(run.prior.log_prob(support).double(), 0)
    assert float(policy[unseen].sum()) > 1.2 * float(prior[unseen].sum())


def test_ga_children_keep_the_terminator_and_differ_from_their_parents():
    ga = GaMethod(GaOptions(crossover=0.0, indel_rate=0.0, mutation_rate=0.0))
    state = GaState()
    seqs = [[1, 2, 3, 12], [4, 5, 12], [7, 12]]
    ga._alphabet(state, seqs)
    assert state.terminator == 12 and state.alphabet == list(range(12)) and state.max_len == 4
    state.members = [",".join(map(str, s)) for s in seqs]
    rng = random.Random(0)
    for _ in range(200):
        child = ga._child(state, rng)
        assert child[-1] == 12 and 12 not in child[:-1] and 2 <= len(child) <= 4
        assert ",".join(map(str, child)) not in state.members  # one mutation at least


def test_ga_pays_each_sample_once_and_resumes_to_the_same_ledger(tmp_path):
    args = ["--method", "ga", *FAST, "--set", "ga.population=20"]
    run_cli("run", "--out", tmp_path / "whole", "--budget", "80", *args)
    run_cli("run", "--out", tmp_path / "part", "--budget", "40", *args)
    run_cli("resume", tmp_path / "part", "--budget", "80", "-q")
    whole = ledger_keys(tmp_path / "whole")
    assert len(whole) == len(set(whole)) == 80
    assert ledger_keys(tmp_path / "part") == whole
    s = json.loads((tmp_path / "whole" / "summary.json").read_text())
    last = rounds(tmp_path / "whole")[-1]
    assert len(last["population"]) == 20
    assert s["eval"]["final"]["rate"] == pytest.approx(  # the population, uniform
        sum(x > 0 for x in last["population_reward"]) / 20)
