"""NREs per second through each oracle executor (threads, processes, ray), for 1..8 workers, with a sleeping toy oracle.

toy-1d's budgeted oracle sleeps `task_options.oracle_seconds` per call and the ledger gets one
sample per call (`oracle.batch_size=1`), so an ideal executor with W workers reaches W / seconds
NRE/s. The same script measures the ledger's own cost per NRE with an oracle that does not sleep.

    python benchmarks/oracle_throughput.py --quick    # 0.1 s a call: threads x1, x4; pools x2
    python benchmarks/oracle_throughput.py            # 1 s a call, 1-8 workers, 8 waves each

Each configuration makes `--waves` calls per worker (W x waves NREs; --quick: 8 NREs for every
configuration). Two rates are printed: over the whole span, from the first call to the last
result (it includes the pool's start: spawning processes, starting Ray actors, unpickling the
oracle), and in steady state, after the first wave (the evaluations after the W-th result,
over the time from that result to the last).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, write  # noqa: E402

from banel_framework.run import create_run, plan  # noqa: E402
from banel_framework.runner import execute  # noqa: E402


#: Executors measured (ray only when it is installed: pip install "banel-framework[ray]").
EXECUTORS = ["threads", "processes"] + (["ray"] if __import__("importlib").util.find_spec("ray")
                                        else [])


def one(executor: str, workers: int, seconds: float, n: int, root: Path) -> dict:
    """One run of n NREs; NRE/s over the span from the first call to the last result."""
    out = root / f"{executor}-{workers}-{seconds}"
    p = plan([{"task": "toy-1d", "method": "pretrained", "budget": n, "progress": False,
               "task_options": {"oracle_seconds": seconds},
               "rounds": {"samples_per_round": n}, "eval": {"every": 1000},
               "oracle": {"executor": executor, "workers": workers, "batch_size": 1}}])
    run = create_run(p, out)
    start = time.perf_counter()
    execute(run)
    wall = time.perf_counter() - start
    con = sqlite3.connect(out / "ledger.sqlite")
    (first,) = con.execute("SELECT MIN(called_at) FROM evaluations WHERE status = 'done'").fetchone()
    ends = [t for (t,) in con.execute("SELECT finished_at FROM evaluations WHERE status = 'done' "
                                      "ORDER BY finished_at")]
    con.close()
    done, span = len(ends), ends[-1] - first
    steady = None
    if done > workers and ends[-1] > ends[workers - 1]:  # after the first wave's W results
        steady = (done - workers) / (ends[-1] - ends[workers - 1])
    return {"executor": executor, "workers": workers, "oracle_seconds": seconds, "nre": done,
            "span_seconds": span, "nre_per_second": done / span if span > 0 else None,
            "steady_nre_per_second": steady, "run_seconds": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--waves", type=int, default=8, help="calls per worker (not with --quick)")
    args = ap.parse_args()
    seconds, workers = (0.1, [1, 4]) if args.quick else (1.0, [1, 2, 4, 8])

    def n(w: int) -> int:
        return 2 * max(workers) if args.quick else args.waves * w

    root = Path(tempfile.mkdtemp())
    rows = [one("inline", 1, seconds, n(1), root)]
    for ex in EXECUTORS:  # --quick: pools of processes and Ray actors at 2 workers only
        ws = workers if not args.quick or ex == "threads" else [2]
        rows += [one(ex, w, seconds, n(w), root) for w in ws]
    for r in rows:
        steady = r["steady_nre_per_second"]
        tail = f"; after the first wave {steady:.2f}" if steady else ""
        print(f"{r['executor']:>9} x{r['workers']}: {r['nre_per_second']:.2f} NRE/s "
              f"(ideal {r['workers'] / seconds:.2f}; {r['nre']} NREs in {r['span_seconds']:.2f} s)"
              + tail)
    # the ledger's own cost: an oracle that does not sleep, inline, one sample a call
    base = one("inline", 1, 0.0, 100, root)
    overhead_ms = 1000 * base["span_seconds"] / base["nre"]
    print(f"ledger overhead: {overhead_ms:.2f} ms per NRE (reserve, mark, call, record; "
          f"{base['nre']} NREs, one a call)")
    plot = plot_rows(rows, seconds)
    write("oracle_throughput" + ("_quick" if args.quick else ""),
          {"oracle_seconds": seconds, "rows": rows, "ledger_overhead_ms_per_nre": overhead_ms,
           "plot": str(plot)})


def plot_rows(rows: list[dict], seconds: float) -> Path:
    """NRE/s against workers, one line per executor, with the ideal W / seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for ex in EXECUTORS:
        rs = [r for r in rows if r["executor"] == ex]
        ax.plot([r["workers"] for r in rs], [r["nre_per_second"] for r in rs], "o-", label=ex)
    ws = sorted({r["workers"] for r in rows})
    ax.plot(ws, [w / seconds for w in ws], "k--", lw=1, label="ideal")
    inline = next(r for r in rows if r["executor"] == "inline")
    ax.plot([1], [inline["nre_per_second"]], "s", color="C2", label="inline")
    ax.set_xlabel("workers")
    ax.set_ylabel("NRE per second")
    ax.set_title(f"oracle throughput, {seconds:g} s per call")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"oracle_throughput_{seconds:g}s.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
