"""One line per run directory: NREs, successes found, final rate with its interval, gain, time.

  python benchmarks/runs_summary.py RUN_DIR...
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path


def line(d: Path) -> str:
    """The run's figures from its ledger and, when it finished, its summary."""
    con = sqlite3.connect(f"file:{d / 'ledger.sqlite'}?mode=ro", uri=True)
    ok = [json.loads(x).get("successes") or 0 for (x,) in
          con.execute("SELECT data FROM rounds WHERE status='done' ORDER BY round")]
    nre = con.execute("SELECT COUNT(*) FROM evaluations WHERE status='done'").fetchone()[0]
    out = f"{d.name:<28} NREs {nre:>5} successes {sum(ok):>4} per round {ok}"
    if (d / "summary.json").exists():
        s = json.loads((d / "summary.json").read_text())
        f, p = s["eval"]["final"], s["eval"]["prior"]
        out += (f" | prior {p['rate']:.2e} final {f['rate']:.2e} [{f['ci'][0]:.2e}, "
                f"{f['ci'][1]:.2e}] x{s['improvement'] or 0:.2f} {s['wall_seconds']:.0f}s")
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        if (Path(arg) / "ledger.sqlite").exists():
            print(line(Path(arg)))
