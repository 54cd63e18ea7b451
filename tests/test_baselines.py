"""The policy-gradient baselines: reinforce, rnd and count, their bonuses, ledger use and resume."""

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from banel_plugins.count import CountBonus, CountOptions, NgramDensity
from banel_plugins.policy_gradient import RunningStats
from banel_plugins.rnd import RndBonus, RndOptions
from banel_plugins.sequence_features import hashed_features
from click.testing import CliRunner
from helpers import install_example

from banel_framework.cli import main
from banel_framework.run import open_run
from banel_framework.samples import Samples

FAST = ["-q", "--set", "trainer.num_threads=1"]


def run_cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def rounds(run_dir: Path) -> list[dict]:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return [json.loads(d) for (d,) in con.execute("SELECT data FROM rounds ORDER BY round")]


def keys(run_dir: Path) -> list[str]:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return [k for (k,) in con.execute("SELECT key FROM evaluations ORDER BY id")]


# -- the bonuses ---------------------------------------------------------------------------------

def test_pseudo_count_of_a_single_token_is_its_count_plus_alpha():
    d = NgramDensity(alpha=0.1, vocab=50)
    for tok, times in [(3, 7), (4, 1), (9, 20)]:
        for _ in range(times):
            d.add([tok])
    for tok, times in [(3, 7), (4, 1), (9, 20), (11, 0)]:
        assert d.pseudo_count([tok]) == pytest.approx(times + 0.1, rel=1e-9)


def test_ngram_pseudo_counts_generalise_and_survive_a_checkpoint(tmp_path):
    opts = CountOptions()
    bonus = CountBonus(opts, vocab=13)
    seen = Samples.from_sequences([[1, 2, 3, 12], [4, 5, 6, 12]] * 10)
    bonus.learn(seen, seed=0)
    probe = Samples.from_sequences([[1, 2, 3, 12], [1, 2, 6, 12], [7, 8, 9, 12]])
    raw = bonus.raw(probe)
    assert raw[0] < raw[1] < raw[2]  # seen < new but made of seen parts < made of unseen parts
    bonus.stats.update(raw)
    bonus.save(tmp_path / "b.pt")
    again = CountBonus(opts, vocab=13)
    again.load(tmp_path / "b.pt")
    assert torch.equal(again.raw(probe), raw) and again.stats.std == bonus.stats.std


def test_rnd_bonus_falls_on_what_the_predictor_learned_and_resumes_exactly(tmp_path):
    opts = RndOptions(feature_dim=128, hidden=64, predictor_epochs=30, predictor_lr=3e-3)
    bonus = RndBonus(opts, seed=5)
    seen = Samples.from_sequences([[1, 2, 3], [2, 3, 4], [5, 1, 1]] * 8)
    new = Samples.from_sequences([[7, 7, 8], [9, 0, 6]])
    before = bonus.raw(seen).mean()
    bonus.learn(seen, seed=1)
    assert bonus.raw(seen).mean() < 0.2 * before
    assert bonus.raw(new).mean() > 3 * bonus.raw(seen).mean()
    bonus.save(tmp_path / "rnd.pt")
    other = RndBonus(opts, seed=99)  # different random target: load must replace it
    other.load(tmp_path / "rnd.pt")
    assert torch.equal(other.raw(new), bonus.raw(new))
    bonus.learn(new, seed=2)
    other.learn(new, seed=2)  # optimizer state came back too
    assert torch.equal(other.raw(seen), bonus.raw(seen))


def test_running_stats_and_features():
    stats, xs = RunningStats(), torch.randn(300, dtype=torch.float64) * 3 + 1
    for part in xs.split(37):
        stats.update(part)
    assert stats.mean == pytest.approx(float(xs.mean())) and stats.n == 300
    assert stats.std == pytest.approx(float(xs.std(unbiased=False)))
    f = hashed_features(Samples.from_sequences([[1, 2], [2, 1], [1, 2, 0]]), 512)
    assert f.shape == (3, 512) and not torch.equal(f[0], f[1])  # positions matter
    assert f[0].sum() == 2 + 1 + 1 and f[2].sum() == 3 + 2 + 1  # tokens, bigrams, length


# -- runs ------------------------------------------------------------------------------------

NO_SUCCESS = ["--set", "task_options.success_above=5", "--set", "rounds.max_rounds=8",
              *[x for m in ("reinforce", "rnd", "count")
                for kv in ("lr=0.3", "batch_size=10", "beta=1") for x in ("--set", f"{m}.{kv}")
                if not (m == "reinforce" and kv == "beta=1")]]


def unseen_mass(run_dir: Path) -> tuple[float, float]:
    """Mass the prior and the final policy put on samples the ledger has not seen."""
    run = open_run(run_dir)
    support = run.task.support()
    unseen = [i for i, k in enumerate(support.keys()) if not run.ledger.is_known(k)]
    policy = run.method.distribution(run).probabilities(support)
    prior = torch.softmax(run.prior.log_prob(support).double(), 0)
    return float(prior[unseen].sum()), float(policy[unseen].sum())


def test_reinforce_never_moves_without_a_success_and_novelty_bonuses_do(tmp_path):
    for method in ("reinforce", "rnd", "count"):
        out = tmp_path / method
        run_cli("run", "--out", out, "--method", method, "--budget", "500", *FAST, *NO_SUCCESS)
        s = json.loads((out / "summary.json").read_text())
        data = rounds(out)
        assert len(data) == 8 and s["solutions_found"] == 0
        assert all(len(d["batch"]) == d["proposals_drawn"] == 10 for d in data)
        assert sum(d["new_candidates"] for d in data) == s["nre_used"] == len(set(keys(out)))
        prior_mass, policy_mass = unseen_mass(out)
        if method == "reinforce":  # zero reward everywhere: zero gradient, the prior unchanged
            assert all(d["fit_steps"] == 0 and d["kl_to_prior"] == 0 for d in data)
            prior = torch.load(out / "checkpoints" / "prior.pt", weights_only=True)
            last = torch.load(out / "checkpoints" / "policy_r008.pt", weights_only=True)
            assert all(torch.equal(prior[k], last[k]) for k in prior)
            assert len(list((out / "checkpoints").glob("policy_r*.pt"))) == 1
            assert policy_mass == pytest.approx(prior_mass, rel=1e-6)
        else:  # the bonus moves mass to samples not evaluated yet
            assert all(d["fit_steps"] == 1 for d in data[1:]) and data[-1]["kl_to_prior"] > 1e-3
            assert policy_mass > 1.2 * prior_mass


def test_rnd_lifts_the_toy_success_rate_through_the_ledger(tmp_path):
    out = tmp_path / "rnd"
    run_cli("run", "--out", out, "--method", "rnd", "--budget", "100", *FAST,
            "--set", "rnd.lr=0.3", "--set", "rnd.batch_size=20")
    s = json.loads((out / "summary.json").read_text())
    assert s["method"] == "rnd" and s["nre_used"] == 100 and s["stop_reason"] == "budget spent"
    assert s["eval"]["final"]["rate"] > 20 * s["eval"]["prior"]["rate"]
    data = rounds(out)
    assert sum(d["duplicates"] for d in data) > 0  # repeats were answered by the ledger, free
    assert sum(d["new_candidates"] for d in data) == 100 == len(set(keys(out)))
    assert data[-1]["proposals_drawn"] <= 20  # the last batch is cut where the budget ends
    cfg = (out / "config.yaml").read_text()
    assert "lr: 0.3" in cfg  # the settings are recorded with the run,
    assert "beta: 3.0" in cfg  # with the task's tuned default for those not set


@pytest.mark.parametrize("args, message", [
    (["--method", "rnd", "--set", "rnd.lr=0"], "rnd.lr"),
    (["--method", "reinforce", "--set", "reinforce.beta=1"], "reinforce.beta: unknown"),
    (["--method", "count", "--set", "count.alpha=-1"], "count.alpha"),
    (["--method", "reinforce", "--set", "method_options.lr=1"], "method_options -> reinforce"),
    (["--set", "failure_model.init=prior"], "failure_model -> banel.failure_model"),
    (["--set", "banel.samples_per_round=5"], "banel.samples_per_round -> rounds.samples_per_round"),
])
def test_bad_method_options_are_named(tmp_path, args, message):
    res = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "r"), "-q", *args])
    assert res.exit_code == 2 and message in res.stderr and not (tmp_path / "r").exists()


def started(run_dir: Path) -> int:
    """Rounds begun so far (0 while the ledger is not there yet)."""
    try:
        return len(rounds(run_dir)) if (run_dir / "ledger.sqlite").exists() else 0
    except sqlite3.Error:
        return 0


SLOW = ["--task", "needle", "--budget", "40", "-q", "--method", "rnd", "--set", "oracle.name=slow",
        "--set", "oracle.options.delay=0.15", "--set", "rnd.batch_size=9",
        "--set", "rnd.lr=0.3", "--set", "trainer.num_threads=1"]


def test_kill_9_then_resume_makes_the_same_evaluations(tmp_path, on_path):
    on_path(install_example(tmp_path / "site"))
    out = tmp_path / "killed"
    exe = Path(sys.executable).with_name("banel")
    proc = subprocess.Popen([str(exe), "run", "--out", str(out), *SLOW],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while started(out) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.2)  # inside round 3: sampled, evaluating or fitting
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists()
    run_cli("resume", out, "-q")
    got = keys(out)
    assert len(got) == len(set(got)) == 40
    clean = tmp_path / "clean"
    run_cli("run", "--out", clean, *SLOW, "--set", "oracle.options.delay=0")
    assert keys(clean) == got
    a, b = (json.loads((d / "summary.json").read_text()) for d in (out, clean))
    assert a["eval"]["final"]["rate"] == b["eval"]["final"]["rate"] and a["rounds"] == b["rounds"]
    assert not math.isnan(a["eval"]["final"]["rate"])


KEEP = ["--method", "rnd", *FAST, "--set", "rnd.lr=0.3", "--set", "rnd.batch_size=20",
        "--set", "rnd.keep_optimizer=true"]


def test_a_kept_optimizer_carries_adams_moments_across_updates_and_a_resume(tmp_path):
    full = tmp_path / "full"
    run_cli("run", "--out", full, "--budget", "120", *KEEP)
    data = rounds(full)
    run = open_run(full)
    state = run.method.restore(run).policy.optimizer_state()
    steps = {int(s["step"]) for s in state["state"].values()}
    assert steps == {sum(d["fit_steps"] for d in data)} and len(data) > 2  # one long run
    assert len(list((full / "checkpoints").glob("optimizer_r*.pt"))) == 1
    fresh = tmp_path / "fresh"  # without the option every update starts a new optimizer
    run_cli("run", "--out", fresh, "--budget", "120", *KEEP[:-2])
    assert keys(fresh) != keys(full) and not any("optimizer" in d for d in rounds(fresh))
    half = tmp_path / "half"  # stopped after round 3, resumed with more budget: the same evaluations
    run_cli("run", "--out", half, "--budget", sum(d["new_candidates"] for d in data[:3]), *KEEP)
    run_cli("resume", half, "-q", "--budget", "120")
    assert keys(half) == keys(full)


class Killed(BaseException):
    """Stands in for SIGKILL at one exact point: nothing in the tool catches it."""


def test_a_kill_after_an_update_and_before_its_record_resumes_from_the_round_before(
        tmp_path, monkeypatch):
    """The older checkpoints stay until the ledger names the new ones (found by a kill -9)."""
    from banel_framework.ledger import Ledger

    args = ["--budget", "60", "--method", "rnd", *FAST, "--set", "rnd.batch_size=10"]
    clean = tmp_path / "clean"
    run_cli("run", "--out", clean, *args)
    real = Ledger.set_round

    def dies_recording_round_3(self, round_, status, data):
        if round_ == 3 and status == "fitted":
            raise Killed
        return real(self, round_, status, data)

    monkeypatch.setattr(Ledger, "set_round", dies_recording_round_3)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        CliRunner().invoke(main, ["run", "--out", str(out), *args])
    assert (out / "checkpoints" / "policy_r003.pt").exists()  # written, but not yet recorded
    assert (out / "checkpoints" / "policy_r002.pt").exists()  # what a resume restores
    monkeypatch.setattr(Ledger, "set_round", real)
    run_cli("resume", out, "-q")
    assert keys(out) == keys(clean)
    assert sorted(p.name for p in (out / "checkpoints").glob("policy_r*.pt")) == \
        sorted(p.name for p in (clean / "checkpoints").glob("policy_r*.pt"))


def test_keep_optimizer_is_refused_for_a_generator_without_it():
    from types import SimpleNamespace

    from banel_plugins.policy_gradient import PolicyGradientOptions, ReinforceMethod

    from banel_framework.errors import ConfigError
    from banel_framework.interfaces import Generator
    method = ReinforceMethod(PolicyGradientOptions(keep_optimizer=True))
    with pytest.raises(ConfigError, match="keep_optimizer needs a generator"):
        method.check(SimpleNamespace(generator_cls=Generator, generator_name="plain"))
    ReinforceMethod(PolicyGradientOptions()).check(
        SimpleNamespace(generator_cls=Generator, generator_name="plain"))
