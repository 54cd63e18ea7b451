"""How often each method's candidates hold a part of the success (a near miss), from ledgers.

    python benchmarks/near_misses.py runs/sparse10/motif runs/motif-banel-T1.5 --parts ae eb

Reads every `<method>/seed*/ledger.sqlite` under each comparison directory and counts, per
method, the evaluated candidates of round 1 and of the later rounds that contain each part (a
substring of the text; on the motif task the success "aeb" needs both rare transitions "ae"
and "eb"). Round 1 is the prior's (or the proposal's) own draw; a later round shows what the
method's learning did to it. Prints a table and writes benchmarks/results/near_misses.json.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402


def count(ledger: Path, parts: list[str]) -> dict[str, list[int]]:
    """{"first"|"later": [candidates, with part 1, with part 2, ...]} of one ledger."""
    con = sqlite3.connect(ledger)
    try:
        rows = con.execute("SELECT round, text FROM evaluations WHERE status = 'done'").fetchall()
    finally:
        con.close()
    out = {"first": [0] * (len(parts) + 1), "later": [0] * (len(parts) + 1)}
    for rnd, text in rows:
        c = out["first" if rnd <= 1 else "later"]
        c[0] += 1
        for i, part in enumerate(parts):
            c[i + 1] += part in text
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="comparison directories")
    ap.add_argument("--parts", nargs="+", default=["ae", "eb"])
    ap.add_argument("--name", default="near_misses")
    args = ap.parse_args()
    table = []
    for root in args.dirs:
        for method_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            ledgers = sorted(method_dir.glob("seed*/ledger.sqlite"))
            if not ledgers:
                continue
            tot = {"first": [0] * (len(args.parts) + 1), "later": [0] * (len(args.parts) + 1)}
            for ledger in ledgers:
                for phase, c in count(ledger, args.parts).items():
                    tot[phase] = [a + b for a, b in zip(tot[phase], c)]
            row = {"dir": str(root), "method": method_dir.name, "seeds": len(ledgers)}
            for phase, c in tot.items():
                row[f"{phase}_candidates"] = c[0]
                for part, k in zip(args.parts, c[1:]):
                    row[f"{phase}_{part}"] = k / c[0] if c[0] else None
            table.append(row)
    head = " ".join(f"{ph}:{p:<6}" for ph in ("first", "later") for p in args.parts)
    print(f"{'comparison':<34} {'method':<11} seeds  {head}")
    for r in table:
        cells = " ".join(f"{(r[f'{ph}_{p}'] or 0):<{len(ph) + 7}.4f}" for ph in ("first", "later")
                         for p in args.parts)
        print(f"{Path(r['dir']).name:<34} {r['method']:<11} {r['seeds']:<6} {cells}")
    write(args.name, {"parts": args.parts, "rows": table})


if __name__ == "__main__":
    main()
