"""The Python API, as the README shows it: run a task, read the result, reopen the directory."""

import re
from pathlib import Path

import pytest

import banel_framework as bf

README = Path(__file__).parent.parent / "README.md"


def test_the_readme_example_runs(tmp_path, monkeypatch):
    block = re.search(r"## Python API\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "runs" / "api-demo" / "ledger.sqlite").is_file()


def test_result_gives_the_ledger_and_samples_of_the_final_distribution(tmp_path):
    res = bf.run(task="toy-1d", budget=40, out=tmp_path / "r",
                 overrides={"rounds": {"samples_per_round": 10}, "banel.posterior.kappa": 1.0})
    s = res.summary
    assert s["nre_used"] == 40 == len(res.evaluations()) and len(res.metrics()) == 4
    assert res.run.config.rounds.samples_per_round == 10
    texts = res.sample(200, seed=1)
    assert len(texts) == 200
    # the final posterior avoids what the ledger already knows to fail
    failed = {e.text for e in res.evaluations() if e.reward == 0}
    assert sum(t in failed for t in texts) < 200 * 0.5
    again = bf.open_run(tmp_path / "r")
    assert again.summary == s and again.successes() == res.successes()


def test_bad_overrides_are_named():
    with pytest.raises(bf.ConfigError, match="rounds.samples_per_rond"):
        bf.run(task="toy-1d", overrides={"rounds.samples_per_rond": 3})
