"""The benchmark scripts' --quick modes: they run, print their figures and write their JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


#: Scripts that run in a process of their own: they start processes or Ray, or measure their RSS.
ISOLATED = {"crash_safety.py", "oracle_throughput.py", "memory_rounds.py"}


def quick(tmp_path, script, *args, flags=("--quick",)):
    """Run a benchmark script as `python script --quick ARGS` would; returns what it printed."""
    env = {"BANEL_BENCH_RESULTS": str(tmp_path / "results"), "BANEL_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    argv = [str(BENCH / script), *flags, *args]
    if script not in ISOLATED:  # torch and Lightning are imported already: seconds saved a script
        return in_process(argv, env, tmp_path)
    res = subprocess.run([sys.executable, *argv], cwd=tmp_path, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res.stdout


def in_process(argv, env, cwd):
    """runpy the script as __main__ with argv, env and cwd set, its benchmark modules imported
    afresh (common.RESULTS reads the environment), and everything restored after."""
    import contextlib
    import io
    import runpy

    import torch

    environ, old_argv, old_cwd, old_path = dict(os.environ), sys.argv, os.getcwd(), list(sys.path)
    threads = torch.get_num_threads()
    for name, mod in list(sys.modules.items()):
        if str(getattr(mod, "__file__", None) or "").startswith(str(BENCH)):
            del sys.modules[name]
    os.environ.update(env)
    sys.argv = argv
    os.chdir(cwd)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        assert e.code in (None, 0), f"{argv[0]} exited: {e.code}\n{out.getvalue()[-2000:]}"
    finally:
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(old_cwd)
        sys.argv, sys.path[:] = old_argv, old_path
        torch.set_num_threads(threads)
    return out.getvalue()


def test_filter_cost_quick(tmp_path):
    out = quick(tmp_path, "filter_cost.py")
    data = json.loads((tmp_path / "results" / "filter_cost_quick.json").read_text())
    assert "ratio" in out and data["rows"]
    assert all(r["ratio"] > 0 for r in data["rows"])


@pytest.mark.parametrize("variant", [
    [], pytest.param(["--no-leading-zeros"], marks=pytest.mark.slow)])  # same code path, 35 s
def test_addition_attack_quick(tmp_path, variant):
    out = quick(tmp_path, "addition_attack.py", "--out", str(tmp_path / "runs"), *variant)
    name = "addition_attack_" + ("no-lz" if variant else "lz") + "_quick.json"
    data = json.loads((tmp_path / "results" / name).read_text())
    assert data["table"]["seeds"] == 2 and len(data["summaries"]) == 2
    assert all(s["nre_used"] == 80 for s in data["summaries"])
    assert "proposals/s" in out and "phi fit" in out  # per-round figures are printed
    # explore_arms.py splits each seed's NREs and successes into mutants and the posterior's own
    root = tmp_path / "runs" / ("quick-no-lz" if variant else "quick-lz")
    runs = [str(root / f"seed{k}") for k in (0, 1)]
    out = quick(tmp_path, "explore_arms.py", *runs, "--name", "arms", flags=())
    arms = json.loads((tmp_path / "results" / "arms.json").read_text())["runs"]
    for a, s in zip(arms, data["summaries"]):
        assert a["mutants"][0] + a["posterior"][0] == s["nre_used"]
        assert a["mutants"][1] + a["posterior"][1] == s["solutions_found"] == a["found"]
    assert any(a["mutants"][0] > 0 for a in arms)  # the task's default spends NREs on mutants
    for a in arms:  # every mutant's parent is recorded, and the ten busiest are a part of them
        p = a.get("parents", {"mutants": 0, "top10": [0, 0]})
        assert p["mutants"] == a["mutants"][0] and p["top10"][0] <= p["mutants"]
    assert "share" in out
    # region_blind_spots.py: the regions' verdict on new one-token variants of the successes
    out = quick(tmp_path, "region_blind_spots.py", *runs, "--samples", "200", "--name", "blind",
                flags=())
    blind = json.loads((tmp_path / "results" / "blind.json").read_text())["runs"]
    for b, s in zip(blind, data["summaries"]):
        assert b["distinct_successes"] == s["solutions_found"] and b["variants"] <= 200
        g = b["groups"].get("all", {"kept": 0, "rejected": 0, "kept_successes": 0,
                                    "rejected_successes": 0})
        assert g["kept"] + g["rejected"] == b["variants"]
        assert g["kept_successes"] <= g["kept"] and g["rejected_successes"] <= g["rejected"]
    assert any(b["variants"] > 0 for b in blind) and "succeed" in out
    # regions_by_kind.py: each rebuilt round's draws by kind, and what its regions reject
    quick(tmp_path, "regions_by_kind.py", *runs, "--rounds", "1,2", "--draws", "100", "--name",
          "kinds", "--prior-temperatures", "1,3", flags=())
    prior = json.loads((tmp_path / "results" / "kinds.json").read_text())["prior"]
    assert [p["temperature"] for p in prior] == [1, 3]
    assert all(sum(p["counts"].values()) == 100 for p in prior)
    assert prior[1]["counts"]["valid"] < prior[0]["counts"]["valid"]  # hotter: more junk
    kinds = json.loads((tmp_path / "results" / "kinds.json").read_text())["runs"]
    for rows in kinds.values():
        assert [r["round"] for r in rows] == [1, 2] and rows[1]["regions"][-1] == 2
        for r in rows:
            assert abs(sum(r["drawn"].values()) - 1) < 1e-9
            assert all(x is None or 0 <= x <= 1 for x in r["rejected"].values())


def test_compute_scaling_quick(tmp_path):
    quick(tmp_path, "compute_scaling.py", "--out", str(tmp_path / "runs"))
    data = json.loads((tmp_path / "results" / "compute_scaling_quick.json").read_text())
    assert sorted({r["epochs"] for r in data["rows"]}) == [1, 3]
    assert (tmp_path / "results" / "compute_scaling_quick.png").stat().st_size > 1000


def test_rate_curve_quick(tmp_path):
    out = quick(tmp_path, "rate_curve.py")
    data = json.loads((tmp_path / "results" / "rate_curve_quick.json").read_text())
    assert data["task"] == "toy-1d" and len(data["curve"]) >= 3
    assert data["curve"][-1]["rate"] > data["curve"][0]["rate"]
    assert "excluding known" in out


def test_region_analysis_scripts_on_a_toy_run(tmp_path):
    from click.testing import CliRunner

    from banel_framework.cli import main
    from banel_framework.run import open_run

    run_dir, draws = tmp_path / "toy", tmp_path / "draws.pt"
    res = CliRunner().invoke(main, ["run", "--out", str(run_dir), "-q", "--budget", "300",
                                    "--set", "banel.distill.enabled=false"])
    assert res.exit_code == 0, res.output
    last = max(e.round for e in open_run(run_dir).ledger.solutions())

    def script(name, *args):
        return quick(tmp_path, name, str(run_dir), *args, flags=())

    script("rate_curve.py", "--n", "20000", "--m", "5000", "--draws", str(draws))
    out = script("refit_region.py", "--round", str(last), "--draws", str(draws), "--m", "2000")
    data = json.loads((tmp_path / "results" / f"refit_region_toy_r{last:03d}.json").read_text())
    assert [r["weight"] for r in data["rows"]] == [0.0, 1.0] and data["known_successes"] > 0
    plain, taught = data["rows"]
    assert all(0 <= r["rejects_prior"] <= 1 and 0 <= r["rejects_successes"] <= 1
               for r in data["rows"])
    # the counter-examples' own log-ratios fall when they join the fit
    assert sum(taught["known_log_ratio"]) < sum(plain["known_log_ratio"])
    assert "rejects" in out
    out = script("region_vs_atypicality.py", "--draws", str(draws), "--m", "2000")
    data = json.loads((tmp_path / "results" / "region_vs_atypicality_toy.json").read_text())
    assert data["rows"] and all(0 < r["acceptance"] <= 1 for r in data["rows"])
    assert "atypicality filter" in out


def test_oracle_throughput_quick(tmp_path):
    out = quick(tmp_path, "oracle_throughput.py")
    data = json.loads((tmp_path / "results" / "oracle_throughput_quick.json").read_text())
    assert "NRE/s" in out and "ledger overhead" in out
    by = {(r["executor"], r["workers"]): r["nre_per_second"] for r in data["rows"]}
    assert by["threads", 4] > 2 * by["threads", 1]  # calls overlap: throughput grows
    # pools overlap calls too: their ratio to inline is the benchmark's figure to read, not a
    # timed assertion (each pool worker imports torch, which --quick keeps to two of them)
    assert by["processes", 2] > 0 and by["ray", 2] > 0
    assert data["ledger_overhead_ms_per_nre"] > 0


def test_crash_safety_quick(tmp_path):
    """One run kill -9'd seven times at random points of its progress, resumed after each."""
    out = quick(tmp_path, "crash_safety.py")
    chain = json.loads((tmp_path / "results" / "crash_safety_quick.json").read_text())["chain"]
    assert "same_evaluations_as_uninterrupted" in out
    at_kill = chain["finished_evaluations_at_each_kill"]
    assert chain["kills"] >= 6 and len(set(at_kill)) >= 4  # kills land at many points of the run
    assert chain["resumed"], chain["error"]
    assert chain["checks_with_duplicate_keys"] == chain["checks_with_lost_evaluations"] == 0
    assert chain["checks_over_budget"] == 0
    assert chain["same_evaluations_as_uninterrupted"] and chain["same_final_rate"]


@pytest.mark.slow  # 18 s; the page's task runs in test_task_page, the suite's in sparse_suite
def test_unseen_task_quick(tmp_path):
    out = quick(tmp_path, "unseen_task.py", "--methods", "pretrained,banel")
    data = json.loads((tmp_path / "results" / "unseen_task_quick.json").read_text())
    assert [r["method"] for r in data["table"]] == ["pretrained", "banel"]
    assert all(r["nre_used_mean"] == 60 for r in data["table"])
    assert [t["temperature"] for t in data["prior_at_temperatures"]] == [1.0, 1.3, 1.6, 2.0]
    assert [t["lowest"] for t in data["least_likely"]] == [0.2, 0.05, 0.01]
    assert "prior at temperature 2.0" in out and "least likely 1%" in out


def test_sparse_suite_quick(tmp_path):
    out = quick(tmp_path, "sparse_suite.py", "--variants", "toy-tail", "toy-tail-ordinal",
                "--methods", "pretrained,banel")
    data = json.loads((tmp_path / "results" / "sparse_suite_quick.json").read_text())
    toy = data["variants"]["toy-tail"]
    assert toy["budget"] == 40 and 5e-6 < toy["prior_rate"] < 2e-5  # exact: the toy's support
    assert toy["prior_expected_in_budget"] < 0.5
    assert [r["method"] for r in toy["rows"]] == ["pretrained", "banel"]
    assert "met" in toy["goal"] and "goal (banel" in out
    # the ordinal-kernel variant runs banel only; its goal is read against toy-tail's others
    ordinal = data["variants"]["toy-tail-ordinal"]
    assert [r["method"] for r in ordinal["rows"]] == ["banel"]
    assert ordinal["goal"]["best_other_seeds_with_success"] == toy["rows"][0][
        "seeds_with_success"]


def test_memory_rounds_quick(tmp_path):
    out = quick(tmp_path, "memory_rounds.py")
    data = json.loads((tmp_path / "results" / "memory_rounds_quick.json").read_text())
    assert data["rounds"] == 6 and len(data["rss_mib"]) == 6
    assert all(m > 50 for m in data["rss_mib"])  # a process holding torch
    assert abs(data["slope_mib_per_round"]) < 5  # toy-1d's failure models are a few floats
    assert "MiB a round" in out


def test_near_misses_counts_parts_per_phase_from_real_ledgers(tmp_path):
    from banel_framework.ledger import Ledger

    texts = {"banel": [(1, "xaey"), (1, "zz"), (2, "ebq"), (2, "aeb"), (3, "qq")],
             "tempered": [(1, "ae"), (2, "ae"), (2, "eb")]}
    for method, rows in texts.items():
        (tmp_path / "cmp" / method / "seed0").mkdir(parents=True)
        ledger = Ledger(tmp_path / "cmp" / method / "seed0" / "ledger.sqlite")
        ledger.budget = 10
        for i, (rnd, text) in enumerate(rows):
            ledger.reserve(rnd, [f"k{i}"], [text])
            ledger.record([(f"k{i}", float(text == "aeb"))])
        ledger.close()
    env = {**os.environ, "BANEL_BENCH_RESULTS": str(tmp_path / "results")}
    res = subprocess.run([sys.executable, str(BENCH / "near_misses.py"), str(tmp_path / "cmp"),
                          "--parts", "ae", "eb"], env=env, capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr
    rows = {r["method"]: r for r in
            json.loads((tmp_path / "results" / "near_misses.json").read_text())["rows"]}
    b, t = rows["banel"], rows["tempered"]
    assert (b["first_candidates"], b["first_ae"], b["first_eb"]) == (2, 0.5, 0.0)
    assert (b["later_candidates"], b["later_ae"], b["later_eb"]) == (3, 1 / 3, 2 / 3)
    assert (t["first_ae"], t["later_ae"], t["later_eb"]) == (1.0, 0.5, 0.5)


def test_tuning_grids_reach_nested_options():
    sys.path.insert(0, str(BENCH))
    from tune_baselines import name_of, nested, settings

    grid = {"failure_model.options.bandwidth": [1, 2], "failure_model.options.reach": [None],
            "not_an_option": [1]}
    got = settings("banel", grid)
    assert got == [{"failure_model.options.bandwidth": 1, "failure_model.options.reach": None},
                   {"failure_model.options.bandwidth": 2, "failure_model.options.reach": None}]
    assert nested(got[0]) == {"failure_model": {"options": {"bandwidth": 1, "reach": None}}}
    assert name_of(got[1]) == "bandwidth2-reachNone"


def test_leading_zero_probe_quick(tmp_path):
    out = quick(tmp_path, "leading_zero_probe.py")
    data = json.loads((tmp_path / "results" / "leading_zero_probe_quick.json").read_text())
    assert len(data["target"]) == 12 and all(0 <= r["error"] <= 1 for r in data["target"])
    # more zeros push more operands past max_digits characters (seeded: 0.2 vs 0.8 expected)
    longer = {r["zeros"]: r["longer_than_max_digits"] for r in data["target"]
              if r["where"] == "first"}
    assert 0 < longer[1] < longer[4] < 1
    assert sum(data["prior_shapes"].values()) == 2000 and "error" in out


def test_tuning_extend_keeps_earlier_rows(tmp_path):
    args = ("--task", "toy-1d", "--budget", "20", "--methods", "reinforce", "--seeds", "100",
            "--out", str(tmp_path / "runs"), "--name", "tune_t")
    quick(tmp_path, "tune_baselines.py", *args, "--grid", '{"lr": [0.03], "batch_size": [10]}',
          flags=())
    out = quick(tmp_path, "tune_baselines.py", *args, "--extend",
                "--grid", '{"lr": [0.03, 0.3], "batch_size": [10]}', flags=())
    data = json.loads((tmp_path / "results" / "tune_t.json").read_text())
    assert [r["options"]["lr"] for r in data["rows"]] == [0.03, 0.3]  # 0.03 is not rerun
    assert "lr0.03-" not in out and "lr0.3-" in out and len(data["grids"]) == 2
    assert data["best"]["reinforce"] in [r["options"] for r in data["rows"]]
    res = subprocess.run([sys.executable, str(BENCH / "tune_baselines.py"), *args, "--extend",
                          "--seeds", "101", "--grid", '{"lr": [1.0]}'], cwd=tmp_path,
                         env={**os.environ, "BANEL_BENCH_RESULTS": str(tmp_path / "results")},
                         capture_output=True, text=True, check=False)
    assert res.returncode != 0 and "other seeds" in res.stderr


WORKER_SCRIPT = '''
import os, sys, time
sys.path.insert(0, {bench!r})
from common import parallel

def nap(out):
    open(os.path.join(out, str(os.getpid())), "w").close()
    time.sleep(120)

if __name__ == "__main__":
    parallel(nap, [({out!r},), ({out!r},)], jobs=2)
'''


def test_killed_benchmark_leaves_no_worker_behind(tmp_path):
    """parallel()'s workers exit when the benchmark that started them is killed."""
    import signal
    import time

    out = tmp_path / "pids"
    out.mkdir()
    script = tmp_path / "bench.py"
    script.write_text(WORKER_SCRIPT.format(bench=str(BENCH), out=str(out)))
    parent = subprocess.Popen([sys.executable, str(script)])
    deadline = time.time() + 60
    while len(list(out.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.2)
    workers = [int(p.name) for p in out.iterdir()]
    assert len(workers) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"

    deadline = time.time() + 15
    while any(alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in workers)


def test_addition_ceiling_builds_the_chains_it_asks_for_and_counts_every_query(tmp_path):
    import random

    from addition_ceiling import operands
    from banel_tasks.addition.arith import carry_chain

    rng = random.Random(0)
    for la, lb in [(1, 1), (3, 5), (5, 2), (4, 4)]:
        for _ in range(50):
            a, b = operands(la, lb, rng.random(), rng)
            assert (len(str(a)), len(str(b))) == (la, lb)  # exact lengths, no leading zero
        if la == lb:  # a carry forced everywhere runs the whole length; none: no chain
            assert carry_chain(*operands(la, lb, 1.0, rng)) == la
        assert carry_chain(*operands(la, lb, 0.0, rng)) == 0
    quick(tmp_path, "addition_ceiling.py")
    data = json.loads((tmp_path / "results" / "addition_ceiling_quick.json").read_text())
    assert sum(n for _, n in data["by_chain"].values()) == 25 * 40  # 5 x 5 length pairs
    errors = [c["error"] for c in data["classes"]]
    assert errors == sorted(errors, reverse=True) and data["ceiling"] == data["classes"][0]["gain_bound"]
    assert {f["queries"] for f in data["families"].values()} == {45}
    assert all(0 < f["prior_mass"] < 1 for f in data["families"].values())


def test_addition_lookahead_builds_the_runs_it_asks_for_and_classifies_a_ledger(tmp_path):
    import random

    from addition_lookahead import built
    from banel_tasks.addition.arith import propagate_run

    rng = random.Random(0)
    for la, lb in [(1, 1), (3, 5), (5, 2), (4, 4)]:
        for k in range(max(la, lb) + 1):
            for carry_in in (False, True):
                if carry_in and (k == 0 or k >= max(la, lb)):
                    continue
                for _ in range(20):
                    a, b = built(la, lb, k, carry_in, rng)
                    assert (len(str(a)), len(str(b))) == (la, lb) and propagate_run(a, b) == k
    from banel_framework.ledger import Ledger

    ledger_run = tmp_path / "run"
    ledger_run.mkdir()
    ledger = Ledger(ledger_run / "ledger.sqlite")
    ledger.budget = 10
    rows = [("7+6993=", 1.0), ("12+34=", 0.0), ("1+02=", 0.0)]
    ledger.reserve(1, [str(i) for i in range(3)], [t for t, _ in rows])
    ledger.record((str(i), r) for i, (_, r) in enumerate(rows))
    ledger.close()
    quick(tmp_path, "addition_lookahead.py", "--runs", str(ledger_run))
    data = json.loads((tmp_path / "results" / "addition_lookahead_quick.json").read_text())
    prior = data["prior"]
    assert prior["at_least"][0]["queries"] == prior["valid"] and prior["at_least"][0]["at_least"] == 0
    shares = [r["share_of_draws"] for r in prior["at_least"]]
    assert shares == sorted(shares, reverse=True)  # a longer run is a subset of a shorter one
    assert {(r["run"], r["carry_in"]) for r in data["built"]} == {
        (k, c) for k in range(6) for c in (False, True) if k or not c} - {(5, True)}
    # the leading-zero query is not valid without leading zeros, so one round of two valid NREs
    assert data["drift"] == [{"round": 1, "valid_nres": 2, "run_2_plus": 0.5, "run_3_plus": 0.0,
                              "successes": 1}]


def test_addition_lookahead_drift_only_pools_the_rounds_by_thirds(tmp_path):
    from banel_framework.ledger import Ledger

    run = tmp_path / "run"
    run.mkdir()
    ledger = Ledger(run / "ledger.sqlite")
    ledger.budget = 20
    by_round = {1: [("12+34=", 0.0), ("45+54=", 0.0)], 2: [("7+9993=", 1.0)],
                3: [("1+1=", 0.0), ("09+1=", 0.0)], 4: [("4+5=", 0.0)], 5: [], 6: [("999+1=", 1.0)]}
    for r, rows in by_round.items():
        keys = [f"{r}-{i}" for i in range(len(rows))]
        if rows:
            ledger.reserve(r, keys, [t for t, _ in rows])
            ledger.record(zip(keys, (w for _, w in rows)))
    ledger.close()
    out = quick(tmp_path, "addition_lookahead.py", "--runs", str(run), "--drift-only")
    assert "prior:" not in out  # no target, no prior draws
    data = json.loads((tmp_path / "results" / "addition_lookahead_quick.json").read_text())
    assert data["prior"] is None and data["built"] == []
    # rounds 1-2: "45+54=" (a run of 2) and "7+9993=" (3) of 3 valid; 3-4: "09+1=" has a leading
    # zero, which leaves "1+1=" (0) and "4+5=" (1); 5-6: "999+1=" (9+1 is 10, then 9 and 9: 2)
    assert [t["rounds"] for t in data["drift_thirds"]] == [[1, 2], [3, 4], [5, 6]]
    assert [t["valid_nres"] for t in data["drift_thirds"]] == [3, 2, 1]
    assert [round(t["run_2_plus"], 3) for t in data["drift_thirds"]] == [0.667, 0.0, 1.0]
    assert [round(t["run_3_plus"], 3) for t in data["drift_thirds"]] == [0.333, 0.0, 0.0]
    assert [t["successes"] for t in data["drift_thirds"]] == [1, 0, 1]


def test_addition_target_measures_a_target_built_by_its_set_options(tmp_path):
    out = quick(tmp_path, "addition_target.py", "--set", "task_options.max_digits=3",
                "--name", "target3")
    data = json.loads((tmp_path / "results" / "target3.json").read_text())
    r = data["retrained"]
    assert "retrained target: error rate" in out and r["samples"] == 2000
    assert data["args"]["sets"] == ["task_options.max_digits=3"]
    # a run of digit pairs summing to 9 is at most as long as the longest operand it reads
    assert max(int(k) for k in r["error_by_run_summing_to_9"]) <= 3
    classified = sum(n for _, n in r["error_by_run_summing_to_9"].values())
    assert classified == r["samples"] - r["invalid"]


def test_addition_aligned_ranks_the_prior_under_each_model_and_slices_the_unlikely(tmp_path):
    out = quick(tmp_path, "addition_aligned.py")
    data = json.loads((tmp_path / "results" / "addition_aligned_quick.json").read_text())
    rows = data["rows"]
    assert [r["model"] for r in rows[::5]] == ["attacker", "pair sums", "pair digits", "sums to 9"]
    assert all(r["queries"] == max(1, round(r["slice"] * data["valid"])) for r in rows)
    assert all(0 <= r["wrong"] <= r["queries"] and 0 <= r["run_3_plus"] <= r["run_2_plus"] <= 1
               for r in rows)
    # a chain over "sums to 9" finds runs of such places unlikely: its tail is rich in them
    bit = {r["slice"]: r for r in rows if r["model"] == "sums to 9"}
    assert bit[0.1]["run_2_plus"] > 2 * data["all_draws"]["run_2_plus"]
    assert "most unlikely" in out
