"""Oracle faults: retries, time-outs, failed calls, bad rewards, a dying worker, bad run dirs."""

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import HERE, install_on_path

from banel_framework.cli import main
from banel_framework.faults import FaultPolicy, OracleTimeout

BASE = ["-q", "--set", "trainer.num_threads=1", "--set", "rounds.samples_per_round=10"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    res = invoke(*args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


@pytest.fixture
def faulty(tmp_path, on_path):
    on_path(install_on_path(tmp_path / "site", "banel-faulty", "0.0.1",
                            {"faulty": "banel_faulty"}, [HERE / "fault_plugin" / "banel_faulty.py"]))


def rows(run_dir: Path) -> list[tuple]:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return list(con.execute("SELECT key, text, status, reward, error FROM evaluations ORDER BY id"))


def faulty_run(out, budget, mode, *sets, method="pretrained"):
    return invoke("run", "--out", out, "--budget", budget, "--method", method, *BASE,
                  "--set", "oracle.name=faulty", "--set", f"oracle.options.mode={mode}",
                  "--set", "oracle.backoff=0", *sets)


def test_policy_retries_then_raises_and_times_out():
    calls = []

    def flaky(x):
        calls.append(x)
        if len(calls) < 3:
            raise ConnectionError("down")
        return x * 2

    assert FaultPolicy(retries=2, backoff=0).call(flaky, 4) == 8 and len(calls) == 3
    calls.clear()
    with pytest.raises(ConnectionError):
        FaultPolicy(retries=1, backoff=0).call(flaky, 4)
    assert len(calls) == 2
    with pytest.raises(OracleTimeout):
        FaultPolicy(timeout=0.05).call(__import__("time").sleep, 2)


def test_a_flaky_oracle_is_retried_and_nothing_is_lost(tmp_path, faulty):
    res = faulty_run(tmp_path / "r", 30, "flaky")
    assert res.exit_code == 0, res.output
    evs = rows(tmp_path / "r")
    assert len(evs) == 30 and all(e[2] == "done" for e in evs)
    res = faulty_run(tmp_path / "r0", 30, "flaky", "--set", "oracle.retries=0",
                     "--set", "oracle.max_failed_share=1")
    s = json.loads((tmp_path / "r0" / "summary.json").read_text())
    assert s["failed_evaluations"] == 30 and s["nre_used"] == 30  # paid, counted, recorded
    assert all(e[2] == "failed" and e[3] is None and "ConnectionError" in e[4]
               for e in rows(tmp_path / "r0"))


def test_failed_calls_are_recorded_never_used_as_failures(tmp_path, faulty):
    ok("run", "--out", tmp_path / "plain", "--budget", 20, "--method", "banel", *BASE)
    texts = [e[1] for e in rows(tmp_path / "plain")[:3]]
    sets = ["--set", "oracle.options.texts=" + json.dumps(texts)]
    res = faulty_run(tmp_path / "f", 20, "fails_on", *sets, method="banel")
    assert res.exit_code == 0, res.output
    evs = rows(tmp_path / "f")
    failed = [e for e in evs if e[2] == "failed"]
    assert sorted(e[1] for e in failed) == sorted(texts)
    assert all("RuntimeError: simulator crashed" in e[4] for e in failed)
    s = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert s["failed_evaluations"] == 3 and s["nre_used"] == 20
    assert "failed oracle calls: 3" in res.output
    con = sqlite3.connect(tmp_path / "f" / "ledger.sqlite")
    first = json.loads(con.execute("SELECT data FROM rounds WHERE round = 1").fetchone()[0])
    assert first["failed"] == 3 and first["phi_samples"] == 7  # phi fitted on 10 - 3 failures
    log = (tmp_path / "f" / "run.log").read_text()
    assert log.count("oracle call(s) failed after oracle.retries=2") == 3

    res = faulty_run(tmp_path / "nc", 20, "fails_on", *sets, "--set",
                     "oracle.failed_counts_budget=false", method="banel")
    evs = rows(tmp_path / "nc")
    assert len([e for e in evs if e[2] == "done"]) == 20 and len(evs) == 23


def test_a_hanging_call_times_out_and_too_many_failures_stop_resumably(tmp_path, faulty):
    ok("run", "--out", tmp_path / "plain", "--budget", 10, "--method", "pretrained", *BASE)
    texts = json.dumps([e[1] for e in rows(tmp_path / "plain")[:8]])
    res = faulty_run(tmp_path / "h", 10, "hangs_on", "--set", f"oracle.options.texts={texts}",
                     "--set", "oracle.timeout=0.1", "--set", "oracle.retries=0")
    assert res.exit_code == 2
    assert "oracle calls failed" in res.stderr and "banel resume" in res.stderr
    assert "OracleTimeout: no answer within oracle.timeout=0.1s" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    failed = [e for e in rows(tmp_path / "h") if e[2] == "failed"]
    assert 5 <= len(failed) <= 8
    res = invoke("resume", tmp_path / "h", "-q")  # same oracle: stops again, nothing repeated
    assert res.exit_code == 2 and len(rows(tmp_path / "h")) <= 10


@pytest.mark.parametrize("mode, sets, message", [
    ("value", ["--set", "oracle.options.value=2"], "returned 2 for sample"),
    ("value", ["--set", "oracle.options.value=nan"], "returned nan for sample"),
])
def test_bad_rewards_end_in_one_line_naming_task_and_sample(tmp_path, faulty, mode, sets, message):
    ok("run", "--out", tmp_path / "plain", "--budget", 10, "--method", "pretrained", *BASE)
    text = rows(tmp_path / "plain")[0][1]
    res = faulty_run(tmp_path / "v", 10, mode, *sets, "--set", "oracle.options.texts=" + json.dumps([text]))
    assert res.exit_code == 2, res.output
    line = res.stderr.strip()
    assert message in line and "'toy-1d'" in line and repr(text) in line and "\n" not in line
    assert not [e for e in rows(tmp_path / "v") if e[2] == "done" and e[1] == text]


@pytest.mark.parametrize("executor", ["processes", "ray"])
def test_a_worker_that_dies_is_replaced_and_its_call_sent_again(tmp_path, faulty, executor):
    marker, log = tmp_path / "died", tmp_path / "keys.log"
    res = faulty_run(tmp_path / "d", 12, "dies_once", "--set", f"oracle.options.marker={marker}",
                     "--set", f"oracle.options.keys_log={log}",
                     "--set", f"oracle.executor={executor}", "--set", "oracle.workers=2")
    assert res.exit_code == 0, res.output + res.stderr
    assert marker.read_text() == "died"
    evs = rows(tmp_path / "d")
    assert len(evs) == 12 and all(e[2] == "done" for e in evs)
    # the oracle asked for idempotency keys: a call sent again carries the same ones
    con = sqlite3.connect(tmp_path / "d" / "ledger.sqlite")
    run_id = json.loads(con.execute("SELECT value FROM meta WHERE key = 'run_id'").fetchone()[0])
    attempts = dict(con.execute("SELECT key, attempts FROM evaluations"))
    sent = log.read_text().split()
    assert sorted(set(sent)) == sorted(f"{run_id}/{k}" for k in attempts)
    assert max(sent.count(k) for k in sent) == 2  # the call the worker died in, sent again
    again = [k for k, n in attempts.items() if n > 1]
    if executor == "processes":  # the driver sends it again (Ray retries it by itself)
        assert again and all(sent.count(f"{run_id}/{k}") <= attempts[k] for k in attempts)
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["oracle_attempts"] == {"dispatched": sum(attempts.values()),
                                          "samples_dispatched_again": len(again)}


@pytest.mark.parametrize("setup, message", [
    ("empty", "is empty"),
    ("garbage", "is not a readable ledger"),
])
def test_resume_on_a_broken_ledger_is_one_line(tmp_path, setup, message):
    ok("run", "--out", tmp_path / "r", "--budget", 10, "--method", "pretrained", *BASE)
    ledger = tmp_path / "r" / "ledger.sqlite"
    for extra in ("-wal", "-shm"):
        Path(str(ledger) + extra).unlink(missing_ok=True)
    ledger.write_bytes(b"" if setup == "empty" else b"\x00not a database\xff" * 100)
    res = invoke("resume", tmp_path / "r", "-q")
    assert res.exit_code == 2 and message in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 1
    if setup == "empty":
        assert ledger.stat().st_size == 0  # nothing written into it


def test_bad_out_directories_are_refused_before_anything_is_written(tmp_path):
    (tmp_path / "file").write_text("x")
    for out, message in [("", "--out is empty"), (tmp_path / "file" / "run", "a parent is a file"),
                         (tmp_path / ("x" * 300), "cannot"), (tmp_path / "file", "is a file")]:
        res = invoke("run", "--out", out, "--budget", 5, *BASE)
        assert res.exit_code == 2 and message in res.stderr, (out, res.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no partial directory left


@pytest.mark.parametrize("content, args, message", [
    (b"task: 5\n", [], "task: a name (a string), not 5"),
    (b"\x00\xff\xfe binary", [], "is not UTF-8 text"),
    (b"", ["--budget", str(10**30)], "budget: Input should be less than or equal to"),
    (b"", ["--set", "trainer.precision=bogus"], "Precision 'bogus' is invalid"),
    (b"", ["--set", "trainer.devices=0"], "trainer (accelerator="),
])
def test_bad_input_is_one_line_before_any_nre(tmp_path, content, args, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    res = invoke("run", "--out", tmp_path / "r", "--config", cfg, *args, *BASE)
    assert res.exit_code == 2 and message in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_asked_for_on_a_machine_without_one_is_refused_first(tmp_path):
    res = invoke("run", "--out", tmp_path / "r", "--set", "trainer.accelerator=gpu", *BASE)
    assert res.exit_code == 2 and "No supported gpu backend found" in res.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("edit, key", [
    ("task_options:\n  success_above: 0.5\n", "task_options"),
    ("method: reinforce\n", "method"),
])
def test_resume_refuses_a_ledger_made_for_another_config(tmp_path, edit, key):
    ok("run", "--out", tmp_path / "r", "--budget", 10, "--method", "pretrained", *BASE)
    cfg = tmp_path / "r" / "config.yaml"
    import yaml

    data = yaml.safe_load(cfg.read_text())
    data.update(yaml.safe_load(edit))
    cfg.write_text(yaml.safe_dump(data))
    res = invoke("resume", tmp_path / "r", "--budget", 20, "-q")
    assert res.exit_code == 2 and "was edited" in res.stderr and key in res.stderr, res.output
    assert len(rows(tmp_path / "r")) == 10


@pytest.mark.slow  # passed here, timed out once on a loaded CI run (not yet understood)
def test_ctrl_c_during_a_failure_model_fit_is_the_usual_interrupted_line(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "banel_framework.cli", "run", "--out", str(out), "--budget", "40",
         "-q", "--set", "rounds.samples_per_round=10", "--set", "trainer.num_threads=1",
         "--set", "banel.failure_model.fit.epochs=1000000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until round 1 is evaluated: phi's fit is under way
        time.sleep(0.5)
        if (out / "ledger.sqlite").exists():
            try:
                status = sqlite3.connect(out / "ledger.sqlite").execute(
                    "SELECT status FROM rounds WHERE round = 1").fetchone()
            except sqlite3.OperationalError:
                continue
            if status and status[0] == "evaluated":
                break
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "Interrupted: the ledger is intact; continue with banel resume" in err.decode()
    assert len(rows(out)) == 10 and all(e[2] == "done" for e in rows(out))


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_process_workers_exit_when_the_driver_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "banel_framework.cli", "run", "--out", str(tmp_path / "k"), "-q",
         "--budget", "40", "--set", "task_options.oracle_seconds=0.5", "--set",
         "oracle.executor=processes", "--set", "oracle.workers=2", "--set", "oracle.batch_size=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 60, []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.2)
        workers = [c for c in _children(proc.pid)
                   if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(workers) == 2, "the workers never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.2)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()]
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive, "worker processes outlived the killed driver"
