"""docs/writing-a-generator.md: its GRU family passes the contract checker and runs a task."""

import json
import sqlite3
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_task_page import SMALL
from test_task_page import install as install_task

from banel_framework.cli import main
from banel_framework.config import TrainerConfig
from banel_framework.testing import check_generator, code_blocks, install_page

DOC = Path(__file__).parent.parent / "docs" / "writing-a-generator.md"


def install(tmp_path: Path) -> Path:
    return install_page(DOC, tmp_path / "gru", "gru_generator", "register_generators",
                        ("gru-generator", "0.0.1", {"gru": "gru_generator"}))


def test_the_page_gru_keeps_the_contract_and_runs_the_page_task(tmp_path, on_path, monkeypatch):
    on_path(install(tmp_path))
    on_path(install_task(tmp_path))
    monkeypatch.setenv("BANEL_CACHE", str(tmp_path / "cache"))
    ns: dict = {}
    exec(next(b for b in code_blocks(DOC) if "def test_gru" in b), ns)  # the page's own test
    ns["test_gru_keeps_the_generator_contract"]()
    res = CliRunner().invoke(main, ["config", "--describe", "--set", "generator.name=gru",
                                    "--task", "motif"])
    assert "generator.options.hidden" in res.output, res.output
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--task", "motif", "--budget", "40", "-q", "--out",
                                    str(out), "--set", "generator.name=gru",
                                    "--set", "generator.options.hidden=16", *SMALL])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    g = s["generator"]
    assert s["nre_used"] == 40 and g["name"] == "gru" and g["class"] == "GRUGenerator", g
    assert g["architecture"]["hidden"] == 16
    assert g["architecture"]["max_len"] == 20  # the task's hint reached the GRU
    con = sqlite3.connect(out / "ledger.sqlite")
    assert con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 40
    con.close()


class Shifted:
    """A generator whose log_prob disagrees with its samples: the checker must refuse it."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def log_prob(self, samples):
        return self.inner.log_prob(samples) + 0.1


def test_the_checker_names_a_broken_likelihood():
    from banel_plugins.transformer import TransformerGenerator, TransformerOptions

    gen = TransformerGenerator.build(TransformerOptions(vocab_size=6, eos_id=5, max_len=8,
                                                        d_model=16, n_layers=1, n_heads=2),
                                     TrainerConfig(accelerator="cpu"))
    check_generator(gen, eos_id=5, max_len=8)
    with pytest.raises(AssertionError, match="sampled log-probs differ"):
        check_generator(Shifted(gen), eos_id=5, max_len=8)
    with pytest.raises(AssertionError, match="must end with EOS"):
        check_generator(gen, eos_id=4, max_len=8)
    assert torch.isfinite(gen.sample(4, seed=0).log_prob).all()
