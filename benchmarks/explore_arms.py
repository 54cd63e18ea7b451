"""Where a BaNEL run's successes came from: mutants of known successes or the posterior's own
candidates, per round, read from each run's ledger (no NRE, nothing recomputed).

  python benchmarks/explore_arms.py RUN_DIR... [--name NAME]

Prints, per run, the distinct successes found, the final rates, and per round the mutation
share, the mutants' and the posterior's successes over NREs, and the new mutants the regions
rejected (with banel.explore_filter=false or banel.explore_unscreened, how those fared when
evaluated all the same, and the unscreened share where banel.explore_unscreened_adapt set it),
and how the mutants' parents were spread (rounds that recorded mutant_parents); writes
results/NAME.json when --name is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from banel_plugins.banel import arm_tallies, offspring_record
from common import write

from banel_framework.run import open_run


def arms(run_dir: Path) -> dict:
    """The run's per-round arms and its summary figures."""
    run = open_run(run_dir)
    rounds = []
    done = [(r, d) for r, s, d in run.ledger.rounds() if s == "done"]
    tallies = arm_tallies(run, done[-1][0] if done else 0)
    total = {"mutations": [0, 0], "posterior": [0, 0]}
    for r, d in done:
        this = tallies[r]
        for arm, (n, k) in this.items():
            total[arm] = [total[arm][0] + n, total[arm][1] + k]
        row = {"round": r, "mutation_share": d.get("mutation_share"),
               "mutants": this["mutations"], "posterior": this["posterior"],
               "mutants_tried": d.get("mutants_tried"),
               "mutants_rejected": d.get("mutants_rejected"),
               "unscreened_share": d.get("unscreened_share")}
        if "mutants_unscreened" in d:  # banel.explore_filter=false: rejected, yet evaluated
            won = [(run.ledger.reward(k) or 0) > 0 for k in d["mutants_unscreened"]]
            row["unscreened"] = [len(won), sum(won)]
        rounds.append(row)
    out = {"run_dir": str(run_dir), "seed": run.config.seed, "rounds": rounds,
           "mutants": total["mutations"], "posterior": total["posterior"]}
    if any("unscreened" in row for row in rounds):
        out["unscreened"] = [sum(row.get("unscreened", [0, 0])[i] for row in rounds)
                             for i in (0, 1)]
    record = offspring_record(run, (done[-1][0] if done else 0) + 1)
    if record:  # the ten successes with the most mutants, and what those mutants gave
        top = sorted(record.values(), reverse=True)[:10]
        out["parents"] = {"distinct": len(record), "mutants": sum(n for n, _ in record.values()),
                          "top10": [sum(n for n, _ in top), sum(k for _, k in top)]}
    summary = run_dir / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        f = s["eval"]["final"]
        out.update(found=s["solutions_found"], final=f["rate"], new_only=f.get("novel_rate"),
                   prior=s["eval"]["prior"]["rate"], wall_seconds=s["wall_seconds"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--name", default=None, help="write results/<name>.json")
    args = ap.parse_args()
    results = []
    for d in args.runs:
        a = arms(d)
        results.append(a)
        (nm, km), (npo, kp) = a["mutants"], a["posterior"]
        head = f"{d}: seed {a['seed']}"
        if "found" in a:
            head += (f", {a['found']} distinct successes found, final {a['final']:.3g}, "
                     f"new only {a['new_only'] or 0:.3g} (prior {a['prior']:.2g})")
        print(head)
        print(f"  mutants {km}/{nm} = {km / max(nm, 1):.3f}, posterior {kp}/{npo} = "
              f"{kp / max(npo, 1):.4f}")
        if "parents" in a:
            p = a["parents"]
            n10, k10 = p["top10"]
            print(f"  parents: {p['distinct']} successes had mutants; the ten with the most had "
                  f"{n10}/{p['mutants']} of them, {k10} successes ({k10 / max(n10, 1):.3f})")
        if "unscreened" in a:  # the ablation: mutants a region rejected, evaluated anyway
            nu, ku = a["unscreened"]
            print(f"  of the mutants, those a region would have rejected: {ku}/{nu} = "
                  f"{ku / max(nu, 1):.3f}; the others: {km - ku}/{nm - nu} = "
                  f"{(km - ku) / max(nm - nu, 1):.3f}")
        for row in a["rounds"]:
            share = row["mutation_share"]
            rej = (f", rejected {row['mutants_rejected']}/{row['mutants_tried']}"
                   if row["mutants_tried"] else "")
            if row.get("unscreened", [0])[0]:
                rej += f" (evaluated anyway: {row['unscreened'][1]}/{row['unscreened'][0]} won)"
            if row.get("unscreened_share") is not None:
                rej += f", unscreened share {row['unscreened_share']:.2f}"
            print(f"  round {row['round']:>2}: share {'-' if share is None else f'{share:.2f}'}"
                  f", mutants {row['mutants'][1]}/{row['mutants'][0]}, posterior "
                  f"{row['posterior'][1]}/{row['posterior'][0]}{rej}")
    if args.name:
        write(args.name, {"args": [str(r) for r in args.runs], "runs": results})


if __name__ == "__main__":
    main()
