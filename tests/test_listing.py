"""The listing cache: `banel tasks` from cache without importing torch, rebuilt on any change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from click.testing import CliRunner

from banel_framework import plugins
from banel_framework.cli import main
from banel_framework.listing import listing
from banel_framework.testing import install_on_path

TASK = '''
"""A task made for the listing test."""
from banel_framework import hookimpl


class Noop:
    name = "listed-task"
    description = "{description}"


@hookimpl
def register_tasks(register):
    register("listed-task", Noop())
'''


def _task_names() -> dict[str, str]:
    rows = json.loads(CliRunner().invoke(main, ["tasks", "--json"]).output)
    return {r["name"]: r["description"] for r in rows}


def test_cached_listing_is_served_without_importing_plugins():
    first = listing()  # loads the plugins (already imported in this process) and writes the cache
    code = ("import sys; from banel_framework.listing import listing; d = listing(); "
            "print(sorted(r['name'] for r in d['kinds']['task'])); "
            "print('torch' in sys.modules, 'banel_tasks.toy1d' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ), check=True).stdout.split("\n")
    assert out[0] == repr(sorted(r["name"] for r in first["kinds"]["task"]))
    assert out[1] == "False False"


def test_a_new_plugin_and_an_edited_one_rebuild_the_listing(tmp_path, on_path):
    assert "listed-task" not in _task_names()
    src = tmp_path / "src" / "listed_plugin"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text(TASK.format(description="first words"))
    on_path(install_on_path(tmp_path / "site", "listed-plugin", "0.1",
                            {"listed": "listed_plugin"}, [src]))
    assert _task_names()["listed-task"] == "first words"
    site_init = tmp_path / "site" / "listed_plugin" / "__init__.py"
    site_init.write_text(TASK.format(description="other words, longer"))
    for mod in [m for m in sys.modules if m.startswith("listed_plugin")]:
        del sys.modules[mod]
    plugins.reset()
    assert _task_names()["listed-task"] == "other words, longer"


def test_a_broken_plugin_is_reported_from_the_cache_too(tmp_path, on_path):
    src = tmp_path / "src" / "broken_listed"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text(textwrap.dedent("raise ImportError('no such backend')\n"))
    on_path(install_on_path(tmp_path / "site", "broken-listed", "0.1",
                            {"broken-listed": "broken_listed"}, [src]))
    for _ in range(2):  # the first call loads and caches, the second is served from the cache
        res = CliRunner().invoke(main, ["tasks"])
        assert res.exit_code == 0
        assert "toy-1d" in res.output
        assert "plugin 'broken-listed' skipped (import): ImportError: no such backend" in res.output
