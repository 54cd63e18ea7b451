import json
import warnings

import pytest
from click.testing import CliRunner
from helpers import install_broken, install_example

from banel_framework import plugins
from banel_framework.cli import main
from banel_framework.errors import UnknownComponentError
from banel_framework.plugins import Component, PluginError, Registry, get_host


def test_builtins_register_through_entry_points():
    host = get_host()
    info = {p["name"]: p for p in host.plugin_list()}
    assert info["toy-1d"]["distribution"] == "banel-framework"
    assert "register_tasks" in info["toy-1d"]["hooks"]
    reg = host.registry
    assert reg.default_task() == "toy-1d"
    for kind, name in [("generator", "categorical"), ("failure_model", "finetune"),
                       ("posterior_scorer", "ratio"), ("method", "banel"),
                       ("method", "pretrained")]:
        assert reg.get(kind, name).name == name


def test_broken_plugins_are_reported_and_skipped(tmp_path, on_path):
    on_path(install_broken(tmp_path / "site"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host = get_host()
    info = {p["name"]: p for p in host.plugin_list()}
    assert info["broken"]["status"] == "failed"
    assert "not installed (on purpose)" in info["broken"]["error"]
    assert info["typo"]["status"] == "failed" and "register_taks" in info["typo"]["error"]
    assert any("broken" in str(w.message) for w in caught)
    assert "toy-1d" in host.registry.names("task")  # the rest keep working


def test_strict_mode_makes_a_broken_plugin_fatal(tmp_path, on_path, monkeypatch):
    on_path(install_broken(tmp_path / "site"))
    monkeypatch.setenv("BANEL_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="broken"):
        get_host()


def test_cli_lists_tasks_and_plugins_despite_broken_ones(tmp_path, on_path):
    on_path(install_broken(tmp_path / "site"))
    runner = CliRunner()
    res = runner.invoke(main, ["tasks"])
    assert res.exit_code == 0 and "toy-1d (default)" in res.output
    plugins.reset()
    res = runner.invoke(main, ["plugins"])
    assert res.exit_code == 0
    listed = json.loads(res.stdout)
    broken = [p for p in listed if p["status"] == "failed"]
    assert {p["name"] for p in broken} == {"broken", "typo"}
    assert all(p["error"] for p in broken)


def test_load_and_block_lists(tmp_path, on_path, monkeypatch):
    on_path(install_example(tmp_path / "site"))
    monkeypatch.setenv("BANEL_BLOCK_PLUGINS", "needle")
    assert "needle" not in get_host().registry.names("task")
    plugins.reset()
    monkeypatch.delenv("BANEL_BLOCK_PLUGINS")
    assert "needle" in get_host().registry.names("task")


def test_a_hook_that_raises_does_not_hide_other_components():
    host = plugins.PluginHost().load()

    class Bad:
        @plugins.hookspecs.hookimpl
        def register_tasks(self, register):
            raise RuntimeError("boom")

    host.pm.register(Bad(), name="bad")
    host.info["bad"] = {"name": "bad", "status": "ok"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = host.registry.names("task")
    assert "toy-1d" in names
    assert host.info["bad"]["status"] == "failed" and "boom" in host.info["bad"]["error"]


def test_same_name_from_two_plugins_must_be_qualified():
    reg = Registry()
    reg.add(Component("task", "t", object(), "a"))
    reg.add(Component("task", "t", object(), "b"))
    with pytest.raises(UnknownComponentError, match="a:t, b:t"):
        reg.get("task", "t")
    assert reg.get("task", "b:t").plugin == "b"
    with pytest.raises(UnknownComponentError, match="known: t"):
        reg.get("task", "nope")


def test_failing_observer_is_reported_and_skipped():
    host = plugins.PluginHost().load()
    calls = []

    class Bad:
        @plugins.hookspecs.hookimpl
        def banel_run_end(self, run, summary):
            raise RuntimeError("observer bug")

    class Good:
        @plugins.hookspecs.hookimpl
        def banel_run_end(self, run, summary):
            calls.append(summary)

    host.pm.register(Bad())
    host.pm.register(Good())
    with pytest.warns(UserWarning, match="observer bug"):
        host.notify("banel_run_end", run=None, summary={"x": 1})
    assert calls == [{"x": 1}]
