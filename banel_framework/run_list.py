"""The run directories under a folder, read from their summaries or ledgers without torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def list_runs(root: Path, depth: int = 3) -> list[dict[str, Any]]:
    """Every run directory under root (a comparison's too), read without writing anything:
    summary.json when the run finished, else what its ledger holds so far."""
    import sqlite3

    found = sorted({p.parent for n in range(depth + 1)
                    for p in root.glob("/".join(["*"] * n + ["ledger.sqlite"]))})
    rows = []
    for d in found:
        summary = d / "summary.json"
        if summary.is_file():
            try:
                s = json.loads(summary.read_text())
            except (OSError, ValueError):
                s = {}
            rows.append({"run_dir": str(d), "task": s.get("task"), "method": s.get("method"),
                         "seed": s.get("seed"), "nre_used": s.get("nre_used"),
                         "nre_budget": s.get("nre_budget"),
                         "distinct_successes": (s.get("discovery") or {}).get("distinct_successes"),
                         "improvement": s.get("improvement"), "stop_reason": s.get("stop_reason"),
                         "state": "finished"})
            continue
        row: dict[str, Any] = {"run_dir": str(d), "state": "not finished: banel resume " + str(d)}
        try:
            con = sqlite3.connect(f"file:{d / 'ledger.sqlite'}?mode=ro", uri=True)
            meta = dict(con.execute("SELECT key, value FROM meta"))
            counted = "" if json.loads(meta.get("failed_counts_budget", "true")) \
                else " WHERE status != 'failed'"  # as Ledger.nre_used counts them
            row["nre_used"] = con.execute(f"SELECT COUNT(*) FROM evaluations{counted}").fetchone()[0]
            row["distinct_successes"] = con.execute(
                "SELECT COUNT(*) FROM evaluations WHERE reward > 0").fetchone()[0]
            con.close()
            made = json.loads(meta.get("made_for", "{}"))
            row.update(task=made.get("task"), method=made.get("method"),
                       nre_budget=json.loads(meta.get("budget", "null")))
            row["seed"] = (yaml.safe_load((d / "config.yaml").read_text()) or {}).get("seed")
        except (sqlite3.Error, ValueError, OSError, yaml.YAMLError):
            row["state"] = "unreadable ledger"
        rows.append(row)
    return rows
