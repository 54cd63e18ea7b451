"""The `banel` command: a thin shell over functions that tests call directly."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click
import yaml

from .config import describe_fields
from .errors import BanelError
from .plugins import get_host


def _showwarning(message, category, filename, lineno, file=None, line=None):
    text = str(message)
    if text.startswith("banel:"):
        click.echo(f"Warning: {text[6:].strip()}", err=True)
    else:
        click.echo(f"Warning: {category.__name__}: {text}", err=True)


class BanelGroup(click.Group):
    """Turns BanelError into one line and exit status 2, never a traceback."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with its whole first sentence (click cuts it at the terminal width)."""
        rows = [(name, cmd.get_short_help_str(limit=300))
                for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BanelError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("Interrupted: the ledger is intact; continue with banel resume RUN_DIR",
                       err=True)
            sys.exit(130)


@click.group(cls=BanelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="banel-framework")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"],
                                               case_sensitive=False),
              default="warning", show_default=True,
              help="Python logging level of the framework and its plugins, on stderr.")
def main(log_level: str) -> None:
    """BaNEL: post-train a generator from failures only, every reward evaluation in a ledger."""
    warnings.showwarning = _showwarning
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("banel_framework", "banel_plugins", "banel_tasks"):
        logger = logging.getLogger(name)
        logger.setLevel(log_level.upper())
        if not logger.handlers:
            logger.addHandler(handler)


_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")


def _config_options(fn):
    fn = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                      help="Override one option, e.g. --set rounds.samples_per_round=50.")(fn)
    fn = click.option("--config", "config_file", type=click.Path(dir_okay=False),
                      help="A TOML or YAML config file.")(fn)
    fn = click.option("--task", help="Task name (default: the registered default task; "
                      "banel tasks lists them).")(fn)
    return fn


@main.command()
@click.argument("root", type=click.Path(file_okay=False), default="runs")
@_JSON
def runs(root, as_json) -> None:
    """List the run directories under ROOT (default: runs/) with their figures."""
    from .run_list import list_runs

    rows = list_runs(Path(root))
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo(f"no run directories under {root}")
        return
    for r in rows:
        imp = r.get("improvement")
        click.echo(f"{r['run_dir']}  {r.get('task')}  {r.get('method')}  seed {r.get('seed')}  "
                   f"{r.get('nre_used')}/{r.get('nre_budget')} NREs  "
                   f"{r.get('distinct_successes', '-')} found  "
                   + (f"{imp:.3g}x  " if isinstance(imp, (int, float)) else "")
                   + (r.get("stop_reason") or r.get("state", "")))


@main.command()
@_config_options
@click.option("--seed", type=int, help="Seed of everything in the run.")
@click.option("--budget", type=int, help="Hard NRE budget (default: the task's own, else 2000; "
              "banel config --task NAME shows it).")
@click.option("--method", help="Method that spends the budget (default: the registered default; "
              "banel methods lists them).")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default: runs/...).")
@click.option("--failures-only", is_flag=True,
              help="The paper's protocol: no success enters any fit (recorded in config.yaml).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_JSON
def run(task, config_file, sets, seed, budget, method, out, failures_only, quiet,
        as_json) -> None:
    """Run a method on a task; results go to a new run directory."""
    from .run import create_run, plan, user_layers
    from .runner import execute

    layers = user_layers(config_file, sets, task=task, seed=seed, budget=budget, method=method,
                         progress=False if quiet else None,
                         failures_only=True if failures_only else None)
    p = plan(layers)
    r = create_run(p, out)
    _finish(r, execute(r), as_json)


def _finish(r, summary, as_json: bool) -> None:
    """The end of a run on the console: the table, or summary.json with --json."""
    from .outputs import console_table, metrics_rows

    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    click.echo(console_table(summary, metrics_rows(r)))
    click.echo(f"run directory: {r.run_dir}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--budget", type=int, help="A new budget before continuing: higher continues, lower "
              "stops sooner (never below the NREs already spent).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_JSON
def resume(run_dir, budget, quiet, as_json) -> None:
    """Continue a stopped or killed run from its ledger, without repeating an evaluation."""
    from .run import open_run
    from .runner import execute

    r = open_run(run_dir, budget=budget)
    if quiet:
        r.config.progress = False
    _finish(r, execute(r), as_json)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
def report(run_dirs) -> None:
    """Rebuild metrics.csv, summary.json and plots of run directories (or a comparison's outputs)."""
    from .compare import is_comparison, summaries_table, write_comparison
    from .outputs import console_table, metrics_rows
    from .run import open_run
    from .runner import write_outputs

    summaries = []
    for d in run_dirs:
        if is_comparison(d):
            result = write_comparison(Path(d))
            click.echo(f"== {d}\n{result['markdown']}")
            continue
        r = open_run(d)
        r.config.progress = False
        summary = write_outputs(r)
        summaries.append(summary)
        if len(run_dirs) > 1:
            click.echo(f"== {d}")
        click.echo(console_table(summary, metrics_rows(r)))
        click.echo(f"plots: {', '.join(summary['plots'])}")
    if len(summaries) > 1:
        click.echo("\n== all runs, by method\n" + summaries_table(summaries))


@main.command()
@_config_options
@click.option("--methods", help="Comma-separated methods to compare (default: every registered "
              "method, the reference first).")
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds 0..N-1 per method.")
@click.option("--budget", type=int, help="NRE budget of every run (default: the task's).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Parent of <method>/seed<k>/ run directories (default: runs/compare-<task>).")
@click.option("--method-set", "method_sets", multiple=True, metavar="METHOD:KEY=VALUE",
              help="Override one option for one method's runs, e.g. rnd:rnd.lr=0.1.")
@click.option("--failures-only", is_flag=True,
              help="The paper's protocol for every run: no success enters any fit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def compare(task, config_file, sets, methods, seeds, budget, out, method_sets, failures_only,
            quiet) -> None:
    """Run methods over seeds (resumable) and write the comparison table, plot and compare.json."""
    from .compare import PLOT_FILE, TABLE_FILE
    from .compare import compare as run_compare

    if methods:
        names = [m.strip() for m in methods.split(",") if m.strip()]
    else:
        comps = get_host().registry.components("method")
        names = [c.name for c in sorted(comps, key=lambda c: (not c.obj.reference, c.name))]
    out = out or f"runs/compare-{task or 'default'}"
    result = run_compare(task, names, list(range(seeds)), out=out, budget=budget,
                         config_file=config_file, method_sets=method_sets,
                         sets=[*sets, *(["failures_only=true"] if failures_only else [])],
                         progress=not quiet, echo=lambda s: click.echo(s, err=True))
    click.echo(result["markdown"])
    for m, vs in (result.get("vs_best_other") or {}).items():
        if vs.get("ratio") is not None:
            click.echo(f"{m} / best other ({vs['best_other']}): {vs['ratio']:.3g}x")
    click.echo(f"comparison: {Path(out) / 'compare.json'}, {Path(out) / TABLE_FILE}, "
               f"{Path(out) / PLOT_FILE}")


@main.command()
@_config_options
def pretrain(task, config_file, sets) -> None:
    """Build and cache a task's pretrained parts (also done on first use)."""
    from .run import plan, task_context, user_layers

    p = plan(user_layers(config_file, sets, task=task))
    built = p.task.pretrain(task_context(p, progress=True))
    click.echo(json.dumps(built, indent=2, default=str))


def _listing(kind: str, as_json: bool) -> None:
    """Registered components of one kind, as lines or as JSON (from the listing cache)."""
    from .listing import listing

    rows = listing()["kinds"][kind]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no {kind}s registered")
    for r in rows:
        mark = (" (default)" if r["default"] else "") + (" (reference)" if r["reference"] else "")
        click.echo(f"{r['name']}{mark}  [{r['plugin']}]  {r['description']}")


@main.command()
@_JSON
def tasks(as_json) -> None:
    """List the registered tasks."""
    _listing("task", as_json)


@main.command()
def plugins() -> None:
    """List plugins as JSON: name, distribution, version, hooks, status, error."""
    from .listing import listing

    click.echo(json.dumps(listing()["plugins"], indent=2))


@main.command()
@_JSON
def methods(as_json) -> None:
    """List the registered methods."""
    _listing("method", as_json)


@main.command()
@_config_options
@click.option("--method", help="The method whose options to show (default: the default method).")
@click.option("--describe", is_flag=True, help="List every option with its description instead.")
def config(task, config_file, sets, method, describe) -> None:
    """Print the effective configuration (task defaults, then file, then --set)."""
    from .run import plan, user_layers

    p = plan(user_layers(config_file, sets, task=task, method=method))
    if describe:
        for key, value, desc in describe_plan(p):
            click.echo(f"{key} = {value}\n    {desc}")
        return
    click.echo(yaml.safe_dump(p.config.model_dump(mode="json"), sort_keys=False).rstrip())


def describe_plan(p) -> list[tuple[str, str, str]]:
    """Every option of the run `p` would make, with its effective value: the core's, the
    task's, the method's, the generator's, the oracle's and the method's components'."""
    from .config import describe_options

    by_task = set(_dotted(p.task.defaults()))
    if p.config.failures_only:
        by_task |= set(_dotted(p.task.failures_only_defaults()))

    def mark(rows):
        return [(k, v, d + (f" (set by task {p.config.task!r})" if k in by_task else ""))
                for k, v, d in rows]

    rows = mark([r for r in describe_fields(p.config)
                 if r[0].split(".")[0] not in {p.config.method, "task_options"}])
    rows += describe_fields(p.task.options, "task_options.")
    rows += mark(describe_fields(p.method.options, f"{p.config.method}."))
    arch = {**_architecture(p), **p.config.generator.options}
    rows += describe_options(p.generator_cls.Options, arch, "generator.options.",
                             f"generator {p.generator_name!r}")
    if p.oracle_factory is not None:
        rows += describe_options(getattr(p.oracle_factory, "Options", None) or type(None),
                                 p.config.oracle.options, "oracle.options.",
                                 f"oracle {p.config.oracle.name!r}")
    for attr, prefix in (("failure_builder", "failure_model"), ("scorer", "posterior")):
        comp = getattr(p.method, attr, None)
        opts = getattr(comp, "options", None)
        if comp is not None and hasattr(opts, "model_fields"):
            rows += describe_fields(opts, f"{p.config.method}.{prefix}.options.")
    return rows


def _dotted(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += _dotted(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [f"{prefix}{k}"]
    return out


def _architecture(p) -> dict:
    arch = getattr(p.task, "architecture", None)
    try:
        return dict(arch()) if callable(arch) else {}
    except Exception:  # noqa: BLE001 - a task whose architecture needs its data
        return {}


if __name__ == "__main__":  # pragma: no cover
    main()
