"""docs/writing-a-method.md: its complete method installs as a third-party plugin and runs."""

import json
import re
import sqlite3
from pathlib import Path

from helpers import cli, install_on_path

from banel_framework.run import open_run
from banel_framework.samples import Samples

DOC = Path(__file__).parent.parent / "docs" / "writing-a-method.md"


def method_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    return next(b for b in blocks if "register_methods" in b)


def install(tmp_path: Path) -> Path:
    src = tmp_path / "src" / "doc_method"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text(method_source())
    return install_on_path(tmp_path / "site", "doc-method", "0.0.1",
                           {"atypical": "doc_method"}, [src])


def test_the_doc_method_is_one_small_file():
    assert len(method_source().splitlines()) < 150


def test_the_doc_method_runs_resumes_and_is_described(tmp_path, on_path):
    on_path(install(tmp_path))
    res = cli("methods")
    assert res.returncode == 0 and "atypical" in res.stdout, res.stderr
    res = cli("config", "--describe", "--method", "atypical")
    assert "atypical.pool" in res.stdout and "Candidates drawn per" in res.stdout
    out = tmp_path / "run"
    res = cli("run", "--task", "toy-1d", "--method", "atypical", "--budget", "30", "-q",
                "--out", str(out), "--set", "atypical.pool=3", "--set", "rounds.max_rounds=2")
    assert res.returncode == 0, res.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["method"] == "atypical" and s["nre_used"] == 20 and s["rounds"] == 2
    con = sqlite3.connect(out / "ledger.sqlite")
    rounds = [json.loads(d) for (d,) in con.execute("SELECT data FROM rounds ORDER BY round")]
    assert all(d["pool"] == 30 and d["new_candidates"] == 10 for d in rounds)
    keys = [k for (k,) in con.execute("SELECT key FROM evaluations")]
    con.close()
    # the evaluated candidates are the pool's least likely: the toy's tails, not its centre
    run = open_run(out)
    evaluated = run.prior.log_prob(Samples.from_keys(keys)).mean()
    typical = run.prior.sample(2000, seed=1).log_prob.mean()
    assert evaluated < typical - 1.0
    res = cli("resume", str(out), "-q", "--budget", "40")
    assert res.returncode == 0, res.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["nre_used"] == 20 and s["stop_reason"].startswith("reached rounds.max_rounds")
