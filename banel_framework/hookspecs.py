"""The hooks a BaNEL plugin can implement.

Registration hooks hand the plugin a `register(name, obj, **meta)` callback; components are then
chosen by name in the config, so the order in which plugins are called never matters. Event hooks
let observers and loggers follow a run; an observer that raises is reported and skipped.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("banel")
hookimpl = pluggy.HookimplMarker("banel")


# -- registration: the parts of BaNEL, tasks and methods -------------------------------------


@hookspec
def register_tasks(register):
    """Contribute tasks: register(name, TaskClass, default=False)."""


@hookspec
def register_generators(register):
    """Contribute generator families: register(name, Generator subclass with `build`)."""


@hookspec
def register_failure_models(register):
    """Contribute failure-model builders: register(name, FailureModelBuilder subclass)."""


@hookspec
def register_posterior_scorers(register):
    """Contribute posterior scorers: register(name, PosteriorScorer subclass)."""


@hookspec
def register_oracles(register):
    """Contribute reward oracles usable with any task: register(name, factory(task, ctx, options))."""


@hookspec
def register_methods(register):
    """Contribute methods that spend the NRE budget: register(name, Method subclass)."""


@hookspec
def register_executors(register):
    """Contribute oracle executors: register(name, Executor subclass taking `workers`)."""


# -- events: observers and loggers ------------------------------------------------------------


@hookspec
def register_trackers(register):
    """Contribute experiment trackers: register(name, Tracker subclass)."""


@hookspec
def banel_run_start(run):
    """A run (new or resumed) is about to spend its budget."""


@hookspec
def banel_evaluations_recorded(run, evaluations):
    """Oracle results were written to the ledger: a list of (key, text, reward) tuples."""


@hookspec
def banel_round_end(run, record):
    """A round finished; `record` is its row of metrics.csv as a dict."""


@hookspec
def banel_run_end(run, summary):
    """The run finished; `summary` is the content of summary.json."""
