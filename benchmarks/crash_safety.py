"""kill -9 of the driver at random moments, then `banel resume`: the ledger's invariants, counted.

Each trial starts the same BaNEL run (toy-1d by default, with a slow oracle so that kills land
before, during and after oracle calls, in failure-model fits, distillation and evaluation;
`--task addition-attack` or `digits-0to6`: the task's own oracle and models), kills it
with SIGKILL after a random delay, resumes it, and compares with an uninterrupted run of the
same seed: no duplicate key, no finished evaluation lost, never over budget, and the same
evaluations (keys and rewards, in order) and final rate. Kill delays are drawn up to the
uninterrupted run's length; a trial that finishes sooner than that narrows the window for the
next ones, so that a slow reference run does not leave most trials unkilled.

    python benchmarks/crash_safety.py --trials 100 [--workers 8 [--executor processes]]
    python benchmarks/crash_safety.py --trials 5 --workers 8 --executor ray --ray-cluster
    python benchmarks/crash_safety.py --trials 10 --task addition-attack
    python benchmarks/crash_safety.py --chain 30 --trials 0   # one run killed 30 times
    python benchmarks/crash_safety.py --quick          # a chain of 7 kills, for the tests

With --chain K one run is killed K times, each time at a random point of its progress (after
0-4 more finished evaluations, then up to 0.3 s more, so that kills land in oracle
calls, fits, distillation and evaluation), resumed after each kill, and checked after each:
no duplicate key, nothing finished lost since the last check, never over budget; the last
resume runs to the end and is compared with the uninterrupted run. A chain costs one process
start-up per kill instead of a whole run per trial, which is what lets the default tests kill
seven times.

With --ray-cluster the script first starts a Ray head (`ray start --head`, its own port) that
outlives every driver: each run and resume attaches to it through RAY_ADDRESS, as on a real
cluster, and the script checks afterwards that the killed drivers left no actor holding the
cluster's CPUs. It stops that head at the end (`ray stop` stops every Ray on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402

BANEL = [sys.executable, "-m", "banel_framework.cli"]


EXECUTOR = "threads"  # with --workers above 1 (--executor)
TASK = "toy-1d"  # --task
CHAIN = False  # --chain: one sample an oracle call in every run, the reference's too

#: per task: settings that keep a trial short (every phase of a round still runs)
TASK_SETS = {
    "toy-1d": ["task_options.oracle_seconds=0.01"],
    "addition-attack": ["eval.prior_samples=20000", "eval.final_samples=2000", "eval.samples=500",
                        "banel.distill.samples=500", "rounds.draw_batch_size=1024"],
    "digits-0to6": ["eval.prior_samples=20000", "eval.final_samples=2000", "eval.samples=500",
                    "banel.distill.samples=200"],
}


def args_for(out: Path, budget: int, workers: int) -> list[str]:
    ex = ["--set", f"oracle.executor={EXECUTOR}", "--set", f"oracle.workers={workers}"] \
        if workers > 1 else []
    if workers > 1 or CHAIN:  # one sample a call: kills land between single evaluations
        ex += ["--set", "oracle.batch_size=1"]
    if CHAIN and TASK == "toy-1d":  # 10 NREs in 0.5 s: a kill 0-0.3 s after a target lands near it
        ex += ["--set", "task_options.oracle_seconds=0.05"]
    return ["run", "--task", TASK, "--out", str(out), "--budget", str(budget), "-q",
            "--seed", "3",
            "--set", "rounds.samples_per_round=10",
            *[x for kv in TASK_SETS[TASK] for x in ("--set", kv)],
            "--set", "banel.distill.enabled=true", "--set", "banel.distill.acceptance_below=1.0",
            "--set", "trainer.num_threads=1", *ex]


def ledger(out: Path) -> list[tuple]:
    con = sqlite3.connect(out / "ledger.sqlite")
    try:
        return list(con.execute("SELECT key, status, reward FROM evaluations ORDER BY id"))
    finally:
        con.close()


def trial(root: Path, k: int, budget: int, workers: int, delay: float, ref: list[tuple],
          ref_final: float) -> dict:
    out = root / f"t{k}"
    proc = subprocess.Popen(BANEL + args_for(out, budget, workers), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    start = time.perf_counter()
    try:
        proc.wait(timeout=delay)
        finished_first = True
    except subprocess.TimeoutExpired:
        finished_first = False
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    took = time.perf_counter() - start
    before = ledger(out) if (out / "ledger.sqlite").exists() else []
    done_before = {key: r for key, st, r in before if st == "done"}
    if (out / "ledger.sqlite").exists():
        res = subprocess.run(BANEL + ["resume", str(out), "-q"], capture_output=True)
    else:  # killed before the run directory appeared: start it again
        res = subprocess.run(BANEL + args_for(out, budget, workers), capture_output=True)
    return {"delay": delay, "killed": not finished_first, "seconds_to_finish_or_kill": took,
            "done_before_kill": len(done_before), **outcome(out, res, done_before, budget, ref,
                                                             ref_final)}


def outcome(out: Path, res: subprocess.CompletedProcess, done_before: dict, budget: int,
            ref: list[tuple], ref_final: float) -> dict:
    """The finished run's ledger against what was done before the last kill and the reference."""
    after = ledger(out)
    keys = [key for key, _, _ in after]
    rewards = {key: r for key, _, r in after}
    summary = json.loads((out / "summary.json").read_text()) if res.returncode == 0 else {}
    final = ((summary.get("eval") or {}).get("final") or {}).get("rate")
    return {
        "resume_ok": res.returncode == 0,
        "duplicate_keys": len(keys) - len(set(keys)),
        "lost": sum(1 for key, r in done_before.items() if rewards.get(key) != r),
        "over_budget": max(0, len(keys) - budget),
        "same_evaluations": [(a, c) for a, _, c in after] == [(a, c) for a, _, c in ref],
        "same_final": final == ref_final,
        "error": res.stderr.decode()[-300:] if res.returncode else "",
    }


def done_count(out: Path) -> int:
    """Finished evaluations in a live run's ledger (0 before it exists)."""
    try:
        con = sqlite3.connect(f"file:{out / 'ledger.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def chain(root: Path, kills: int, budget: int, workers: int, ref: list[tuple], ref_final: float,
          rng: random.Random) -> dict:
    """One run killed `kills` times at random points of its progress; checked after each."""
    out = root / "chain"
    rows, seen = [], {}
    for k in range(kills):
        cmd = BANEL + (["resume", str(out), "-q"] if (out / "ledger.sqlite").exists()
                       else args_for(out, budget, workers))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target, extra = done_count(out) + rng.randint(0, 4), rng.uniform(0, 0.3)
        deadline = time.time() + 300
        while proc.poll() is None and done_count(out) < target and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(extra)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        now = ledger(out) if (out / "ledger.sqlite").exists() else []
        keys = [key for key, _, _ in now]
        done = {key: r for key, st, r in now if st == "done"}
        rows.append({"kill": k, "killed": killed, "done_at_kill": len(done),
                     "duplicate_keys": len(keys) - len(set(keys)),
                     "lost": sum(1 for key, r in seen.items() if done.get(key) != r),
                     "over_budget": max(0, len(keys) - budget)})
        seen = done
        if not killed:  # it reached the end before the kill
            break
    res = subprocess.run(BANEL + ["resume", str(out), "-q"], capture_output=True)
    end = outcome(out, res, seen, budget, ref, ref_final)
    return {
        "kills": sum(r["killed"] for r in rows), "resumed": end["resume_ok"],
        "checks_with_duplicate_keys": sum(r["duplicate_keys"] > 0 for r in rows)
        + (end["duplicate_keys"] > 0),
        "checks_with_lost_evaluations": sum(r["lost"] > 0 for r in rows) + (end["lost"] > 0),
        "checks_over_budget": sum(r["over_budget"] > 0 for r in rows) + (end["over_budget"] > 0),
        "same_evaluations_as_uninterrupted": end["same_evaluations"],
        "same_final_rate": end["same_final"],
        "finished_evaluations_at_each_kill": [r["done_at_kill"] for r in rows],
        "error": end["error"],
    }


def start_cluster(cpus: int) -> dict[str, str]:
    """A Ray head outside every driver; the environment that attaches a driver to it."""
    import socket

    import ray.util

    with socket.socket() as sock:
        sock.bind(("", 0))
        port = sock.getsockname()[1]
    subprocess.run(["ray", "start", "--head", f"--port={port}", f"--num-cpus={cpus}",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True,
                   capture_output=True)
    # an explicit address needs the cluster's auth mode (Ray >= 2.5x clusters use a token)
    return {"RAY_ADDRESS": f"{ray.util.get_node_ip_address()}:{port}",
            "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}


def cluster_cpus_held(env: dict[str, str]) -> float:
    """CPUs that actors still hold on the attached cluster (0: nothing leaked)."""
    code = ("import ray; ray.init(log_to_driver=False); "
            "print(ray.cluster_resources()['CPU'] - ray.available_resources().get('CPU', 0))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--executor", default="threads", choices=["threads", "processes", "ray"],
                    help="how the workers run (with --workers above 1)")
    ap.add_argument("--ray-cluster", action="store_true",
                    help="attach every driver to a Ray head started here (with --executor ray)")
    ap.add_argument("--task", default="toy-1d", choices=sorted(TASK_SETS))
    ap.add_argument("--chain", type=int, default=0, metavar="K",
                    help="also kill one run K times, resuming after each")
    ap.add_argument("--quick", action="store_true", help="a chain of 7 kills, no other trial")
    args = ap.parse_args()
    if args.ray_cluster and args.executor != "ray":
        ap.error("--ray-cluster needs --executor ray")
    global EXECUTOR, TASK, CHAIN
    EXECUTOR, TASK = args.executor, args.task
    if args.quick:
        args.trials, args.chain, args.budget = 0, 7, 36
    CHAIN = bool(args.chain)
    root = Path(tempfile.mkdtemp())
    cluster = start_cluster(max(args.workers, 2)) if args.ray_cluster else {}
    os.environ.update(cluster)  # every driver below attaches to it
    try:
        counts, rows, span, chained = trials(args, root)
        if cluster:
            time.sleep(5)  # the owners are dead: Ray reclaims their actors
            counts["cluster_cpus_held_after"] = cluster_cpus_held(cluster)
    finally:
        if cluster:
            subprocess.run(["ray", "stop", "--force"], capture_output=True)
    for key, value in counts.items():
        print(f"{key:>34}: {value}")
    if chained:
        print(f"chain of kills of one run (finished evaluations at each kill: "
              f"{chained['finished_evaluations_at_each_kill']}):")
        for key, value in chained.items():
            if key != "finished_evaluations_at_each_kill":
                print(f"{key:>34}: {value}")
    window = (f"kills after 0.2 s to {counts['kill_window_seconds_at_end']:.1f}-{span:.1f} s; "
              if args.trials else "")
    print(f"({args.task}: uninterrupted run {span:.1f} s; {window}workers "
          f"{args.workers}{f', {args.executor}' if args.workers > 1 else ''}"
          f"{', attached to a Ray cluster' if cluster else ''})")
    name = "_quick" if args.quick else f"_w{args.workers}"
    if args.workers > 1 and args.executor != "threads":
        name += f"_{args.executor}"
    if cluster:
        name += "_cluster"
    if args.task != "toy-1d":
        name += f"_{args.task}"
    write("crash_safety" + name,
          {"args": vars(args), "counts": counts, "trials": rows, "chain": chained,
           "run_seconds": span})


def trials(args: argparse.Namespace, root: Path) -> tuple[dict, list[dict], float, dict]:
    """The uninterrupted reference run, the killed-and-resumed trials, the chain; counts."""
    start = time.perf_counter()
    subprocess.run(BANEL + args_for(root / "ref", args.budget, args.workers), check=True,
                   capture_output=True)
    span = time.perf_counter() - start  # kills land anywhere from start-up to the end
    ref = ledger(root / "ref")
    ref_final = json.loads((root / "ref" / "summary.json").read_text())["eval"]["final"]["rate"]
    rng, rows, window = random.Random(0), [], span
    for k in range(args.trials):
        row = trial(root, k, args.budget, args.workers, rng.uniform(0.2, window), ref, ref_final)
        rows.append(row)
        if not row["killed"]:  # it finished sooner than the reference: later kills land earlier
            window = max(0.5, min(window, row["seconds_to_finish_or_kill"]))
    counts = {
        "trials": len(rows), "killed": sum(r["killed"] for r in rows),
        "resumed": sum(r["resume_ok"] for r in rows),
        "with_duplicate_keys": sum(r["duplicate_keys"] > 0 for r in rows),
        "with_lost_evaluations": sum(r["lost"] > 0 for r in rows),
        "over_budget": sum(r["over_budget"] > 0 for r in rows),
        "same_evaluations_as_uninterrupted": sum(r["same_evaluations"] for r in rows),
        "same_final_rate": sum(r["same_final"] for r in rows),
    }
    counts["kill_window_seconds_at_end"] = round(window, 1)
    chained = chain(root, args.chain, args.budget, args.workers, ref, ref_final, rng) \
        if args.chain else {}
    return counts, rows, span, chained


if __name__ == "__main__":
    main()
