"""`banel compare`: each method and seed as its own resumable run, then the paper's table and plot."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import load_config_file, parse_overrides
from .errors import BanelError
from .plugins import PluginHost, get_host
from .run import CONFIG_FILE, LEDGER_FILE, create_run, open_run, plan, user_layers

COMPARE_FILE = "compare.json"
TABLE_FILE = "compare_table.md"
PLOT_FILE = Path("plots") / "compare_success.png"
DISCOVERY_PLOT = Path("plots") / "compare_discovery.png"
#: Config keys a resumed run may differ in from the comparison's plan.
_FREE_KEYS = {"budget", "progress", "trackers"}


@dataclass
class RunResult:
    """One method and seed: its summary and its success-rate curve against NREs."""

    method: str
    seed: int
    run_dir: Path
    summary: dict[str, Any]
    curve: list[tuple[float, float, float | None, float | None]] = field(default_factory=list)
    status: str = "read"


def parse_method_sets(items: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """'METHOD:key=value' overrides, as a nested dict per method."""
    out: dict[str, list[str]] = {}
    for item in items:
        method, sep, rest = item.partition(":")
        if not sep or not method or "=" not in rest:
            raise BanelError(f"--method-set expects METHOD:KEY=VALUE, got {item!r}")
        out.setdefault(method.strip(), []).append(rest)
    return {m: parse_overrides(v) for m, v in out.items()}


def _diff(a: Any, b: Any, prefix: str = "") -> str | None:
    """The first dotted key where two config trees differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if not prefix and k in _FREE_KEYS:
                continue
            d = _diff(a.get(k), b.get(k), f"{prefix}{k}.")
            if d is not None:
                return d
        return None
    return None if a == b else f"{prefix[:-1]} ({a!r} there, {b!r} now)"


def _with_defaults(saved: dict[str, Any], host: PluginHost) -> dict[str, Any]:
    """A saved config as this version reads it: moved settings in their new place, options
    added since at their defaults."""
    try:
        return plan([saved], host, saved=True).config.model_dump(mode="json")
    except BanelError:
        return saved


def run_one(run_dir: Path, layers: list[dict[str, Any]], host: PluginHost,
            progress: bool) -> tuple[dict[str, Any], str]:
    """Run, resume or skip one run directory; returns its summary and what was done."""
    from .runner import execute

    p = plan(layers, host)
    budget = p.config.budget
    if not (run_dir / LEDGER_FILE).exists():
        run = create_run(p, run_dir, host)
        return execute(run), "ran"
    saved = load_config_file(run_dir / CONFIG_FILE)
    diff = _diff(_with_defaults(saved, host), p.config.model_dump(mode="json"))
    if diff is not None:
        raise BanelError(f"{run_dir} was made with another configuration: {diff}; "
                         "choose another --out or restore the settings")
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        s = json.loads(summary_path.read_text())
        if s.get("stop_reason") and s.get("nre_budget") == budget:
            return s, "skipped"
    run = open_run(run_dir, host, budget=budget if saved.get("budget") != budget else None)
    run.config.progress = progress
    return execute(run), "resumed"


def compare(task: str | None, methods: list[str], seeds: list[int], *, out: str | Path,
            budget: int | None = None, config_file: str | None = None,
            sets: list[str] | tuple[str, ...] = (), method_sets: list[str] | tuple[str, ...] = (),
            progress: bool = False, host: PluginHost | None = None,
            echo: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run every method and seed under <out>/<method>/seed<k>, then write the comparison."""
    host = host or get_host()
    out = Path(out)
    if not methods or not seeds:
        raise BanelError("compare needs at least one method and one seed")
    per_method = parse_method_sets(method_sets)
    unknown = sorted(set(per_method) - set(methods))
    if unknown:
        raise BanelError(f"--method-set names {unknown[0]!r}, which is not among --methods")
    base = user_layers(config_file, sets, task=task, budget=budget, progress=progress)
    for m in methods:  # validate every method's configuration before any run starts
        plan([*base, per_method.get(m, {}), {"method": m, "seed": seeds[0]}], host)
    total, i = len(methods) * len(seeds), 0
    for m in methods:
        for seed in seeds:
            i += 1
            run_dir = out / m / f"seed{seed}"
            layers = [*base, per_method.get(m, {}), {"method": m, "seed": seed}]
            s, status = run_one(run_dir, layers, host, progress)
            final = ((s.get("eval") or {}).get("final") or {}).get("rate")
            echo(f"[{i}/{total}] {m} seed {seed}: {status}; final success rate "
                 f"{_g(final)} after {s['nre_used']} NREs ({s['stop_reason']})")
    return write_comparison(out, methods)


# -- reading run directories back -------------------------------------------------------------

def _float(x: str | None) -> float | None:
    return None if x in (None, "") else float(x)


def read_run(run_dir: Path, method: str, seed: int) -> RunResult:
    """A run's summary.json and metrics.csv, as a curve starting at the prior (0 NREs)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    curve: list[tuple[float, float, float | None, float | None]] = []
    prior = (summary.get("eval") or {}).get("prior")
    if prior and _finite(prior.get("rate")):
        curve.append((0.0, prior["rate"], *prior["ci"]))
    metrics = run_dir / "metrics.csv"
    if metrics.exists():
        with open(metrics) as fh:
            for row in csv.DictReader(fh):
                rate = _float(row.get("eval_rate"))
                if rate is not None and row.get("nre_after"):
                    curve.append((float(row["nre_after"]), rate, _float(row.get("eval_low")),
                                  _float(row.get("eval_high"))))
    if "discovery" not in summary:
        summary["discovery"] = _ledger_discovery(run_dir / LEDGER_FILE)
    return RunResult(method, seed, run_dir, summary, curve)


def _ledger_discovery(path: Path) -> dict[str, Any]:
    """outputs.discovery read straight from a ledger (run directories written before it)."""
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rewards = [r for (r,) in con.execute(
            "SELECT reward FROM evaluations WHERE status = 'done' ORDER BY id")]
    finally:
        con.close()
    at = [i + 1 for i, r in enumerate(rewards) if (r or 0) > 0]
    return {"distinct_successes": len(at), "nre_to_first_success": at[0] if at else None,
            "first_success_censored_at": None if at else len(rewards), "success_nres": at}


def collect(out: Path, methods: list[str] | None = None) -> tuple[list[str], list[RunResult]]:
    """Every finished run under <out>/<method>/seed<k>, methods in the given or stored order."""
    if methods is None:
        stored = out / COMPARE_FILE
        methods = (json.loads(stored.read_text())["methods"] if stored.exists()
                   else sorted(d.name for d in out.iterdir() if d.is_dir() and d.name != "plots"))
    results = []
    for m in methods:
        for d in sorted((out / m).glob("seed*"), key=lambda p: int(p.name[4:] or 0)):
            if (d / "summary.json").exists() and d.name[4:].isdigit():
                results.append(read_run(d, m, int(d.name[4:])))
    return methods, results


# -- the table ----------------------------------------------------------------------------------

def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)


def _rate(s: dict[str, Any], which: str) -> float | None:
    r = ((s.get("eval") or {}).get(which) or {}).get("rate")
    return r if _finite(r) else None


def _mean(xs: list[float]) -> float | None:
    return statistics.mean(xs) if xs else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def _interval(xs: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean over seeds (None below two seeds)."""
    if len(xs) < 2:
        return None
    from scipy import stats

    m, sd = statistics.mean(xs), statistics.stdev(xs)
    h = float(stats.t.ppf(0.5 + confidence / 2, len(xs) - 1)) * sd / math.sqrt(len(xs))
    return (m - h, m + h)


def discovery_stats(rs: list[RunResult]) -> dict[str, Any]:
    """Distinct successes over seeds (mean, median, std, interval), seeds with a success, and
    the median NREs to the first success (None when half the seeds or more found none)."""
    found = [float((r.summary.get("discovery") or {}).get("distinct_successes", 0)) for r in rs]
    firsts = sorted((r.summary.get("discovery") or {}).get("nre_to_first_success") or math.inf
                    for r in rs)
    med = statistics.median(firsts) if firsts else math.inf
    return {"distinct_mean": _mean(found), "distinct_median": statistics.median(found) if found
            else None, "distinct_std": statistics.stdev(found) if len(found) > 1 else None,
            "distinct_ci": _interval(found), "distinct_per_seed": found,
            "seeds_with_success": sum(1 for x in found if x > 0),
            "nre_to_first_median": med if math.isfinite(med) else None}


def table(methods: list[str], results: list[RunResult]) -> tuple[list[dict[str, Any]], str]:
    """One row a method: discovery (distinct successes, first success), the final rate on new
    samples and on the paper's measure, and the improvement over the reference."""
    rows = []
    for m in methods:
        rs = [r for r in results if r.method == m]
        finals = [f for r in rs if (f := _rate(r.summary, "final")) is not None]
        priors = [p for r in rs if (p := _rate(r.summary, "prior")) is not None]
        per_seed = [r.summary["improvement"] for r in rs if _finite(r.summary.get("improvement"))]
        novel = [n for r in rs if _finite(n := _final(r).get("novel_rate"))]
        distinct = [d for r in rs if (d := _final(r).get("novel_distinct_k")) is not None]
        rows.append({
            "method": m, "seeds": len(rs), "evaluated": len(finals),
            "nre_used_mean": _mean([r.summary["nre_used"] for r in rs]),
            "prior_mean": _mean(priors), "final_mean": _mean(finals),
            "final_median": statistics.median(finals) if finals else None,
            "final_std": statistics.stdev(finals) if len(finals) > 1 else (0.0 if finals else None),
            "final_min": min(finals) if finals else None, "final_max": max(finals) if finals else None,
            # success rate among final samples not already in the run's ledger
            "novel_mean": _mean(novel) if novel and len(novel) == len(finals) else None,
            # distinct successful final samples not in the ledger (new failure cases)
            "novel_distinct_mean": (_mean(distinct) if distinct and len(distinct) == len(finals)
                                    else None),
            "solutions_mean": _mean([r.summary.get("solutions_found") or 0 for r in rs]),
            "improvement_over_prior": _ratio(_mean(finals), _mean(priors)),
            "improvement_per_seed_mean": _mean(per_seed),
            "wall_seconds_mean": _mean([r.summary.get("wall_seconds") or 0.0 for r in rs]),
            "stop_reasons": sorted({str(r.summary.get("stop_reason")) for r in rs}),
            **discovery_stats(rs),
        })
    refs = methods_with("reference", methods)
    ref_row = next((row for row in rows if row["method"] in refs and row["final_mean"]), None)
    reference = ref_row["method"] if ref_row else "prior"
    for row in rows:
        base = ref_row["final_mean"] if ref_row else row["prior_mean"]
        row["improvement"] = _ratio(row["final_mean"], base)
        row["novel_improvement"] = _ratio(row["novel_mean"], base)
    return rows, reference


def _final(r: RunResult) -> dict[str, Any]:
    """The run's final evaluation from its summary ({} when it has none)."""
    return (r.summary.get("eval") or {}).get("final") or {}


def methods_with(flag: str, methods: list[str], host: PluginHost | None = None) -> set[str]:
    """The compared methods whose registered class sets `flag` (reference, learns); methods no
    longer registered have none."""
    reg = (host or get_host()).registry
    out = set()
    for m in methods:
        try:
            if getattr(reg.get("method", m).obj, flag, False):
                out.add(m)
        except BanelError:
            continue
    return out


def vs_best_other(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each learning method: its improvement over that of the best other learning method."""
    learners = methods_with("learns", [r["method"] for r in rows])
    scored = [r for r in rows if r["method"] in learners and r["improvement"] is not None]
    out = {}
    for row in scored:
        others = [o for o in scored if o is not row]
        if not others:
            continue
        best = max(others, key=lambda o: o["improvement"])
        out[row["method"]] = {"best_other": best["method"], "improvement": row["improvement"],
                              "other_improvement": best["improvement"],
                              "ratio": _ratio(row["improvement"], best["improvement"])}
    return out


def markdown_table(rows: list[dict[str, Any]], reference: str, task: str, budget: Any) -> str:
    """Discovery first (what the NREs bought), then the final rate on new samples and on the
    paper's measure, with the improvement over the reference."""
    head = (f"`{task}` after {budget} NREs: distinct successes found, then the final "
            f"generator's success rate (improvement: over the {reference}'s)\n\n"
            "| method | seeds | NREs | distinct successes: mean [95% CI] | median | "
            "seeds with one | NREs to first (median) | new only | improvement (new only) | "
            "paper's rate | improvement | distinct new |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = [f"| {r['method']} | {r['evaluated']}/{r['seeds']} | {_g(r['nre_used_mean'], 5)} | "
             f"{_g(r.get('distinct_mean'), 5)}{_ci(r.get('distinct_ci'))} | "
             f"{_g(r.get('distinct_median'), 5)} | {r.get('seeds_with_success', '-')}/{r['seeds']} | "
             f"{_first(r)} | {_g(r.get('novel_mean'))} | {_x(r.get('novel_improvement'))} | "
             f"{_g(r['final_mean'])} | {_x(r['improvement'])} | "
             f"{_g(r.get('novel_distinct_mean'), 5)} |" for r in rows]
    prior = _mean([r["prior_mean"] for r in rows if r["prior_mean"] is not None])
    return (head + "\n".join(lines) + f"\n\nprior success rate (mean over seeds): {_g(prior)}; "
            "distinct successes: successes in the ledger, each paid once (mean over seeds, "
            "Student-t interval); NREs to first: median over seeds, '> budget' when half or more "
            "found none; new only: success rate among final samples not already in the run's "
            "ledger; paper's rate: over all final samples; distinct new: distinct successful "
            "final samples not in the ledger\n")


def _ci(ci: Any) -> str:
    return "" if not ci else f" [{max(0.0, ci[0]):.4g}, {ci[1]:.4g}]"


def _first(r: dict[str, Any]) -> str:
    med = r.get("nre_to_first_median")
    return f"> {_g(r['nre_used_mean'], 5)}" if med is None else _g(med, 5)


def _g(x: Any, digits: int = 4) -> str:
    return "-" if not _finite(x) else f"{x:.{digits}g}"


def _x(x: Any) -> str:
    return "-" if not _finite(x) else f"{x:.3g}x"


# -- curves and the plot ------------------------------------------------------------------------

def curves(methods: list[str], results: list[RunResult]) -> dict[str, dict[str, list[float]]]:
    """Per method: mean, min and max over seeds of the latest rate at each NRE count reached."""
    out = {}
    for m in methods:
        rs = [r for r in results if r.method == m and r.curve]
        if not rs:
            continue
        grid = sorted({x for r in rs for x, *_ in r.curve})
        mean, low, high = [], [], []
        for x in grid:
            vals = [_at(r.curve, x) for r in rs]
            vals = [v for v in vals if v is not None]
            mean.append(statistics.mean(vals) if vals else math.nan)
            low.append(min(vals) if vals else math.nan)
            high.append(max(vals) if vals else math.nan)
        out[m] = {"nre": grid, "mean": mean, "min": low, "max": high, "seeds": len(rs)}
    return out


def discovery_curves(methods: list[str], results: list[RunResult]) -> dict[str, dict[str, Any]]:
    """Per method: distinct successes found against NREs, mean and min-max over seeds."""
    out = {}
    for m in methods:
        rs = [r for r in results if r.method == m]
        if not rs:
            continue
        at = [(r.summary.get("discovery") or {}).get("success_nres") or [] for r in rs]
        top = max(r.summary.get("nre_used") or 0 for r in rs)
        grid = sorted({0, top, *[x for xs in at for x in xs]})
        counts = [[sum(1 for x in xs if x <= g) for g in grid] for xs in at]
        out[m] = {"nre": grid, "mean": [statistics.mean(c) for c in zip(*counts)],
                  "min": [min(c) for c in zip(*counts)], "max": [max(c) for c in zip(*counts)],
                  "seeds": len(rs)}
    return out


def discovery_plot(cs: dict[str, dict[str, Any]], task: str, path: Path) -> Path | None:
    """Distinct successes against NREs per method (mean over seeds, min-max band)."""
    wide = max((max(c["max"]) for c in cs.values()), default=0) > 50
    return _band_plot(cs, path, "distinct successes found (band: min-max over seeds)",
                      f"{task}: what the NREs bought",
                      lambda ax: ax.set_yscale("symlog", linthresh=10) if wide else None)


def _at(curve: list[tuple[float, float, Any, Any]], x: float) -> float | None:
    """The rate after the last evaluation at or before x NREs."""
    val = None
    for nre, rate, *_ in curve:
        if nre <= x:
            val = rate
    return val


def compare_plot(cs: dict[str, dict[str, list[float]]], task: str, path: Path) -> Path | None:
    """Success rate against NREs: the mean over seeds per method, min-max band across seeds."""
    positive = [v for c in cs.values() for v in c["mean"] + c["min"] if _finite(v) and v > 0]
    log = bool(positive) and max(positive) / min(positive) > 20
    return _band_plot(cs, path, "success rate (band: min-max over seeds)",
                      f"{task}: success rate against NREs",
                      lambda ax: ax.set_yscale("log") if log else None)


def _band_plot(cs: dict[str, dict[str, Any]], path: Path, ylabel: str, title: str,
               scale: Callable[[Any], Any]) -> Path | None:
    """One step line per method (mean over seeds) with its min-max band, against NREs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not cs:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (m, c) in enumerate(cs.items()):
        ax.step(c["nre"], c["mean"], where="post", color=f"C{i}", label=f"{m} ({c['seeds']} seeds)")
        ax.fill_between(c["nre"], c["min"], c["max"], step="post", color=f"C{i}", alpha=0.2)
    scale(ax)
    ax.set_xlabel("NREs spent")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- writing the comparison -----------------------------------------------------------------------

def _settings(run_dir: Path) -> dict[str, Any]:
    cfg = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    cfg.pop("seed", None)
    cfg.pop("progress", None)
    return cfg


def write_comparison(out: Path, methods: list[str] | None = None) -> dict[str, Any]:
    """compare.json, compare_table.md and plots/compare_success.png from the run directories."""
    methods, results = collect(out, methods)
    if not results:
        raise BanelError(f"{out} holds no finished runs to compare")
    rows, reference = table(methods, results)
    task = results[0].summary["task"]
    budgets = sorted({r.summary["nre_budget"] for r in results})
    priors: dict[int, list[float]] = {}
    for r in results:
        if (p := _rate(r.summary, "prior")) is not None:
            priors.setdefault(r.seed, []).append(p)
    cs = curves(methods, results)
    plot = compare_plot(cs, task, out / PLOT_FILE)
    ds = discovery_curves(methods, results)
    dplot = discovery_plot(ds, task, out / DISCOVERY_PLOT)
    md = markdown_table(rows, reference, task, budgets[0] if len(budgets) == 1 else budgets)
    (out / TABLE_FILE).write_text(md)
    payload = {
        "task": task, "budget": budgets[0] if len(budgets) == 1 else budgets,
        "methods": methods, "seeds": sorted({r.seed for r in results}),
        "reference": reference, "table": rows,
        "vs_best_other": vs_best_other(rows),
        "prior_rate_per_seed": {str(k): v[0] for k, v in sorted(priors.items())},
        "prior_same_across_methods": all(max(v) - min(v) <= 1e-12 for v in priors.values()),
        "runs": [{"method": r.method, "seed": r.seed, "run_dir": str(r.run_dir.relative_to(out)),
                  "prior": _rate(r.summary, "prior"), "final": _rate(r.summary, "final"),
                  "improvement": r.summary.get("improvement"), "nre_used": r.summary["nre_used"],
                  "distinct_successes": r.summary["discovery"]["distinct_successes"],
                  "nre_to_first_success": r.summary["discovery"]["nre_to_first_success"],
                  "rounds": r.summary.get("rounds"), "stop_reason": r.summary.get("stop_reason"),
                  "wall_seconds": r.summary.get("wall_seconds")} for r in results],
        "settings": {m: _settings(next(r.run_dir for r in results if r.method == m))
                     for m in methods if any(r.method == m for r in results)},
        "curves": cs,
        "discovery_curves": ds,
        "files": {"table": TABLE_FILE, "plot": str(PLOT_FILE) if plot else None,
                  "discovery_plot": str(DISCOVERY_PLOT) if dplot else None},
    }
    (out / COMPARE_FILE).write_text(json.dumps(payload, indent=2, default=str) + "\n")
    payload["markdown"] = md
    return payload


def is_comparison(path: str | Path) -> bool:
    """True for a directory written by `banel compare` (it holds compare.json)."""
    return (Path(path) / COMPARE_FILE).is_file()


def summaries_table(summaries: list[dict[str, Any]]) -> str:
    """The comparison table of loose run directories, grouped by method (for `banel report`)."""
    for s in summaries:
        ledger = Path(s.get("run_dir", ".")) / LEDGER_FILE
        if "discovery" not in s and ledger.is_file():
            s["discovery"] = _ledger_discovery(ledger)
    results = [RunResult(s["method"], s["seed"], Path(s.get("run_dir", ".")), s) for s in summaries]
    methods = list(dict.fromkeys(s["method"] for s in summaries))
    rows, reference = table(methods, results)
    tasks = sorted({s["task"] for s in summaries})
    budgets = sorted({s["nre_budget"] for s in summaries})
    return markdown_table(rows, reference, ", ".join(tasks),
                          budgets[0] if len(budgets) == 1 else budgets)
