"""kill -9 in the middle of a run, then `banel resume`: nothing repeated, nothing lost."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import banel, cli, install_example

SLOW = ["--task", "needle", "--budget", "45", "-q", "--set", "oracle.name=slow",
        "--set", "oracle.options.delay=0.15", "--set", "rounds.samples_per_round=9"]


def done_count(ledger: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
        n = con.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'done'").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0


def keys(run_dir: Path) -> list[str]:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return [k for (k,) in con.execute("SELECT key FROM evaluations ORDER BY id")]


# the default run kills seven times: test_crash_safety_quick
@pytest.mark.parametrize("kill_after", [
    pytest.param(4, marks=pytest.mark.slow), pytest.param(16, marks=pytest.mark.slow)])
def test_kill_9_then_resume(tmp_path, on_path, kill_after):
    on_path(install_example(tmp_path / "site"))
    out = tmp_path / "killed"
    exe = Path(sys.executable).with_name("banel")
    proc = subprocess.Popen([str(exe), "run", "--out", str(out), *SLOW],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while done_count(out / "ledger.sqlite") < kill_after:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists()
    assert done_count(out / "ledger.sqlite") < 45

    res = banel("resume", str(out), "-q")
    assert res.returncode == 0, res.stderr
    s = json.loads((out / "summary.json").read_text())
    got = keys(out)
    assert len(got) == 45 == s["nre_used"] == s["nre_budget"]
    assert len(set(got)) == len(got)  # no sample evaluated twice
    con = sqlite3.connect(out / "ledger.sqlite")
    assert con.execute("SELECT COUNT(*) FROM evaluations WHERE status != 'done'").fetchone()[0] == 0
    assert s["eval"]["final"] is not None and s["rounds"] == 5 and s["stop_reason"] == "budget spent"

    # The resumed run made exactly the evaluations an uninterrupted run makes.
    clean = tmp_path / "clean"
    res = banel("run", "--out", str(clean), *SLOW, "--set", "oracle.options.delay=0")
    assert res.returncode == 0, res.stderr
    assert keys(clean) == got


def test_resume_can_raise_the_budget(tmp_path):
    out = tmp_path / "run"
    res = cli("run", "--out", str(out), "-q", "--budget", "30")
    assert res.returncode == 0, res.stderr
    res = cli("resume", str(out), "-q", "--budget", "50")
    assert res.returncode == 0, res.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["nre_used"] == 50 == s["nre_budget"] and len(set(keys(out))) == 50


def test_a_second_process_on_a_live_run_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    res = cli("run", "--out", str(out), "-q", "--budget", "20")
    assert res.returncode == 0, res.stderr
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from banel_framework.lock import RunLock; "
        f"RunLock({str(out)!r}).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    res = cli("resume", str(out), "-q", "--budget", "30")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert f"in use by process {holder.pid}" in lines[0]
    assert json.loads((out / "summary.json").read_text())["nre_used"] == 20  # nothing spent
    assert "budget: 20" in (out / "config.yaml").read_text()  # nor written
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    res = cli("resume", str(out), "-q", "--budget", "30")  # the kernel dropped the dead lock
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "summary.json").read_text())["nre_used"] == 30
