"""docs/writing-a-task-plugin.md: its task installs from the page as a third-party package and runs."""

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from banel_framework.cli import main
from banel_framework.testing import code_blocks, install_page

DOC = Path(__file__).parent.parent / "docs" / "writing-a-task-plugin.md"
SMALL = ["--set", "task_options.sequences=300", "--set", "task_options.prior_epochs=2",
         "--set", "task_options.d_model=16", "--set", "eval.prior_samples=2000",
         "--set", "eval.final_samples=2000", "--set", "eval.samples=1000"]


def install(tmp_path: Path) -> Path:
    """The page's pyproject.toml and module, laid out as pip would install them."""
    return install_page(DOC, tmp_path, "motif_task", "register_tasks")


def test_the_page_task_and_its_tests_run_and_share_one_prior_across_seeds(
        tmp_path, on_path, monkeypatch):
    on_path(install(tmp_path))
    monkeypatch.setenv("BANEL_CACHE", str(tmp_path / "cache"))
    ns: dict = {}
    exec(next(b for b in code_blocks(DOC) if "def test_runs" in b), ns)  # the page's own tests
    ns["test_listed"]()
    ns["test_runs"](tmp_path)  # seed 0, in tmp_path / "r"
    res = CliRunner().invoke(main, ["config", "--describe", "--task", "motif"])
    assert "task_options.motif" in res.output and "aeb" in res.output, res.output
    res = CliRunner().invoke(main, ["run", "--task", "motif", "--budget", "60", "--seed", "1",
                                    "-q", "--out", str(tmp_path / "s1"), *SMALL])
    assert res.exit_code == 0, res.output
    for out in ("r", "s1"):
        s = json.loads((tmp_path / out / "summary.json").read_text())
        assert s["nre_used"] == 60 and s["eval"]["prior"]["n"] == 2000
    ckpts = list((tmp_path / "cache" / "motif").glob("prior-*.pt"))
    assert len(ckpts) == 1  # trained once, for both run seeds
    record = json.loads(ckpts[0].with_suffix(".json").read_text())
    assert record["sequences"] == 300 and record["fit"]["epochs"] == 2
    # the oracle's rewards in the ledger follow the page's check on the codec's texts
    con = sqlite3.connect(tmp_path / "s1" / "ledger.sqlite")
    rows = con.execute("SELECT key, reward FROM evaluations").fetchall()
    con.close()
    assert len(rows) == 60
    for key, reward in rows:
        text = "".join("abcdefgh"[int(t)] for t in key.split(",") if int(t) < 8)
        assert reward == float("aeb" in text)
