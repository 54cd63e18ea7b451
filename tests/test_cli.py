"""The command line: bad input exits 2 with one line; a third-party task runs by name."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import banel, cli, install_broken, install_example

from banel_framework.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("args, message", [
    (["--task", "nope"], "unknown task 'nope'; known: "),  # the list grows with plugins
    (["--budget", "-5"], "invalid configuration: budget: Input should be greater than or equal to 1"),
    (["--set", "banel.samples_per_rond=3"], "banel.samples_per_rond: unknown option"),
    (["--set", "task_options.binz=3"], "task_options.binz: unknown option"),
    (["--set", "generator.options.depth=3"], "generator.options.depth: unknown option"),
    (["--set", "banel.failure_model.name=lora9"], "unknown failure model 'lora9'"),
    (["--method", "magic"], "unknown method 'magic'"),
    (["--set", "banel.posterior.options.tilt=1"], "banel.posterior.options.tilt: unknown option"),
    (["--set", "rounds.temperature=0"], "rounds.temperature: Input should be greater than 0"),
    (["--set", "budget"], "--set expects key=value"),
])
def test_bad_input_exits_2_with_one_line_and_no_run_dir(tmp_path, args, message):
    out = tmp_path / "run"
    res = invoke("run", "--out", str(out), "-q", *args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in res.output
    assert not out.exists()


def test_malformed_config_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[banel\nsamples_per_round = 3\n")
    out = tmp_path / "run"
    res = invoke("run", "--config", str(bad), "--out", str(out))
    assert res.exit_code == 2 and "malformed config file" in res.stderr and not out.exists()


def test_refuses_to_overwrite_a_run(tmp_path):
    out = tmp_path / "run"
    assert invoke("run", "--out", str(out), "-q", "--budget", "20").exit_code == 0
    res = invoke("run", "--out", str(out), "-q")
    assert res.exit_code == 2 and "banel resume" in res.stderr


def test_resume_of_a_non_run_directory(tmp_path):
    res = invoke("resume", str(tmp_path))
    assert res.exit_code == 2 and "not a run directory" in res.stderr


def test_config_prints_the_effective_configuration(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("rounds:\n  samples_per_round: 4\n")
    res = invoke("config", "--config", str(f), "--set", "banel.posterior.kappa=2")
    assert res.exit_code == 0
    cfg = yaml.safe_load(res.output)
    assert cfg["task"] == "toy-1d"
    assert cfg["rounds"]["samples_per_round"] == 4  # file over task defaults
    assert cfg["banel"]["posterior"]["kappa"] == 2  # --set over file
    assert cfg["banel"]["posterior"]["filter_factor"] == 1.5  # the task's default over the core's
    assert "reinforce" not in cfg  # only the chosen method's section
    assert cfg["task_options"]["bins"] == 100
    res = invoke("config", "--describe")
    assert "banel.posterior.filter_factor" in res.output and "reject when" in res.output
    lines = res.output.splitlines()  # a method option the task sets is marked as the task's
    assert lines[lines.index("banel.posterior.filter_factor = 1.5") + 1].endswith(
        "(set by task 'toy-1d')")
    assert not lines[lines.index("banel.distill.fit.lr = 0.001") + 1].endswith("'toy-1d')")
    res = invoke("config", "--describe", "--method", "rnd")
    assert "rnd.predictor_lr" in res.output and "banel.posterior" not in res.output
    assert "rounds.samples_per_round" in res.output
    res = invoke("config", "--describe", "--task", "toy-1d", "--method", "nsr")
    lines = res.output.splitlines()
    assert "rounds.samples_per_round = 10" in lines  # the task's value, not the core's 100
    assert "(set by task 'toy-1d')" in lines[lines.index("rounds.samples_per_round = 10") + 1]
    assert "task_options.success_above = 3.1" in lines and "nsr.positive_weight = 0.0" in lines
    assert any(line.startswith("generator.options.vocab_size = ") for line in lines)


def test_third_party_task_runs_through_its_entry_point(tmp_path, on_path):
    site = install_example(tmp_path / "site")
    on_path(site)
    res = banel("tasks")
    assert res.returncode == 0 and "needle  [needle]" in res.stdout
    out = tmp_path / "run"
    res = cli("run", "--task", "needle", "--out", str(out), "-q", "--budget", "60")
    assert res.returncode == 0, res.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["task"] == "needle" and s["nre_used"] <= 60
    assert s["eval"]["final"]["rate"] > s["eval"]["prior"]["rate"]


def test_broken_plugin_installed_tasks_still_work(tmp_path, on_path):
    on_path(install_broken(tmp_path / "site"))
    res = banel("tasks")
    assert res.returncode == 0 and "toy-1d" in res.stdout
    assert "plugin 'broken' skipped" in res.stderr
    res = banel("plugins")
    listed = {p["name"]: p for p in json.loads(res.stdout)}
    assert listed["broken"]["status"] == "failed"
    assert "ImportError" in listed["broken"]["error"]


def test_json_output_for_scripts(tmp_path):
    rows = json.loads(invoke("methods", "--json").output)
    names = {r["name"] for r in rows}
    assert {"banel", "nsr", "w-reinforce", "ga", "pretrained"} <= names
    assert next(r for r in rows if r["name"] == "banel")["default"]
    assert "positive_weight" in next(r for r in rows if r["name"] == "nsr")["options"]
    tasks = json.loads(invoke("tasks", "--json").output)
    assert "toy-1d" in {t["name"] for t in tasks}
    res = invoke("run", "--out", tmp_path / "r", "--budget", "20", "-q", "--json")
    summary = json.loads(res.output)
    assert summary == json.loads((tmp_path / "r" / "summary.json").read_text())


def test_help_starts_without_torch():
    """`banel --help` imports no torch (lazy package names), and `banel_framework.run(...)` is
    the API function whether or not the submodule of that name was imported first."""
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\nfrom banel_framework.cli import main\n"
            "res = CliRunner().invoke(main, ['--help'])\nassert res.exit_code == 0, res.output\n"
            "assert 'run' in res.output\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_run_submodule_is_the_api_function(tmp_path):
    import sys

    import banel_framework as bf

    assert "banel_framework.run" in sys.modules  # imported by now: bf.run is that module
    assert bf.run(task="toy-1d", budget=20, out=tmp_path / "r").summary["nre_used"] == 20


def _run(*args: str):
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res


def test_the_progress_bar_counts_what_the_run_will_spend(tmp_path):
    """Its total is the budget cut by rounds.max_rounds, and a run that stops early ends it at
    what it spent (not frozen at a fraction of the budget)."""
    res = _run("run", "--task", "toy-1d", "--out", str(tmp_path / "a"), "--budget", "500",
               "--set", "rounds.max_rounds=3")
    frames = res.stderr.replace("\r", "\n")
    assert "30/30 " in frames and "/500 " not in frames, frames[-500:]
    res = _run("run", "--task", "toy-1d", "--out", str(tmp_path / "b"), "--budget", "500",
               "--set", "rounds.max_draws_per_round=5000")
    last = [f for f in res.stderr.replace("\r", "\n").splitlines() if "NRE/s" in f][-1]
    used = json.loads((tmp_path / "b" / "summary.json").read_text())["nre_used"]
    assert used < 500 and f"{used}/{used} " in last, last


def test_runs_lists_finished_and_unfinished_runs(tmp_path):
    _run("run", "--task", "toy-1d", "--budget", "20", "-q", "--out", str(tmp_path / "a"))
    _run("run", "--task", "toy-1d", "--budget", "30", "-q", "--seed", "3",
         "--out", str(tmp_path / "cmp" / "banel" / "seed3"))
    (tmp_path / "cmp" / "banel" / "seed3" / "summary.json").unlink()  # as if it was killed
    rows = {Path(r["run_dir"]).name: r
            for r in json.loads(_run("runs", str(tmp_path), "--json").output)}
    assert rows["a"]["nre_used"] == 20 and rows["a"]["state"] == "finished"
    assert rows["a"]["task"] == "toy-1d" and rows["a"]["method"] == "banel"
    s3 = rows["seed3"]
    assert s3["nre_used"] == 30 and s3["nre_budget"] == 30 and s3["seed"] == 3
    assert s3["state"].startswith("not finished: banel resume")
    assert "toy-1d  banel  seed 0  20/20 NREs" in _run("runs", str(tmp_path)).output
    assert _run("runs", str(tmp_path / "none")).output.startswith("no run directories")


def test_runs_lists_without_importing_torch():
    """`banel runs` reads summaries and ledgers only: a fresh interpreter lists without torch."""
    import subprocess
    import sys

    code = ("import sys; from banel_framework.cli import main\n"
            "try: main(['runs', 'no-such-dir'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('torch', 'lightning', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["no run directories under no-such-dir", "[]"], out


def test_log_level_shows_the_framework_s_own_log(tmp_path):
    from click.testing import CliRunner

    from banel_framework.cli import main

    res = CliRunner().invoke(main, ["--log-level", "bogus", "tasks"])
    assert res.exit_code == 2 and "bogus" in res.output
    import logging

    res = CliRunner().invoke(main, ["--log-level", "debug", "tasks"])
    assert res.exit_code == 0 and logging.getLogger("banel_plugins").level == logging.DEBUG
    res = CliRunner().invoke(main, ["tasks"])
    assert logging.getLogger("banel_framework").level == logging.WARNING


def test_the_progress_bar_shows_evaluations_in_flight(tmp_path):
    res = _run("run", "--task", "toy-1d", "--out", str(tmp_path / "r"), "--budget", "20",
               "--set", "rounds.max_rounds=2", "--set", "oracle.batch_size=1",
               "--set", "oracle.executor=threads", "--set", "oracle.workers=4",
               "--set", "task_options.oracle_seconds=0.5")
    frames = res.stderr.replace("\r", "\n")
    import re

    assert re.search(r"in_flight=[234]\b", frames), frames[-800:]  # several calls at once
