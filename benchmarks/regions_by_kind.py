"""Where an addition-attack posterior drifts, and whether its regions push back: per round, the
proposal's raw draws by kind of query (valid, leading zero, malformed, too long) and the share
of each kind the regions reject. Rebuilt from the run directory (no NREs).

  python benchmarks/regions_by_kind.py RUN_DIR [RUN_DIR...] [--rounds 3,6,9,12,15] [--draws 4096]
      [--prior-temperatures 1,1.2,1.4]   # also the first run's prior, drawn at these temperatures
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import torch
from banel_plugins.banel import replay
from banel_tasks.addition.arith import has_leading_zero, parse, query_pattern
from common import write

from banel_framework.api import open_run

KINDS = ("valid", "leading zero", "malformed", "too long")


def kind(text: str, max_digits: int = 5) -> str:
    """What a query is: valid, with a leading zero, malformed (not 'a+b='), or too long."""
    m = query_pattern(99).match(text)
    if not m:
        return "malformed"
    if any(has_leading_zero(x) for x in m.groups()):
        return "leading zero"
    return "valid" if parse(text, max_digits, True) else "too long"


def measure(run_dir: Path, rounds: set[int], draws: int) -> list[dict]:
    """Per chosen round: drawn share and rejected share of each kind."""
    run = open_run(run_dir).run
    longest = run.task.options.longest_valid_operand
    out = []
    for st in replay(run):
        if st.round not in rounds:
            continue
        post = st.posterior
        samples = post.proposal.sample(draws, seed=123)
        rejected, _ = post.reject_mask(samples)
        drawn, rej = collections.Counter(), collections.Counter()
        for t, x in zip(run.codec.decode_batch(samples), rejected.tolist()):
            drawn[kind(t, longest)] += 1
            rej[kind(t, longest)] += x
        row = {"round": st.round, "regions": [g.round for g in post.regions],
               "drawn": {k: drawn[k] / draws for k in KINDS},
               "rejected": {k: rej[k] / drawn[k] if drawn[k] else None for k in KINDS}}
        out.append(row)
        print(f"{run_dir.name} after round {row['round']}: " + ", ".join(
            f"{k} {row['drawn'][k]:.3f} drawn" + (f" ({row['rejected'][k]:.2f} rejected)"
                                                  if row["rejected"][k] is not None else "")
            for k in KINDS), flush=True)
    return out


def prior_kinds(run_dir: Path, temperatures: list[float], draws: int) -> list[dict]:
    """The prior's draws by kind at each temperature (what a hotter proposal starts from)."""
    run = open_run(run_dir).run
    longest = run.task.options.longest_valid_operand
    out = []
    for t in temperatures:
        texts = run.codec.decode_batch(run.prior.sample(draws, seed=1, temperature=t))
        counts = collections.Counter(kind(x, longest) for x in texts)
        out.append({"temperature": t, "draws": draws, "counts": {k: counts[k] for k in KINDS}})
        print(f"prior at temperature {t}: " + ", ".join(f"{k} {counts[k]} ({counts[k] / draws:.1e})"
                                                       for k in KINDS), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--rounds", default="3,6,9,12,15")
    ap.add_argument("--draws", type=int, default=4096)
    ap.add_argument("--name", default="regions_by_kind")
    ap.add_argument("--prior-temperatures", default=None, metavar="1,1.2",
                    help="also count the prior's draws by kind at these temperatures")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rounds = {int(r) for r in args.rounds.split(",")}
    temps = [float(t) for t in args.prior_temperatures.split(",")] if args.prior_temperatures else []
    write(args.name, {"args": {**vars(args), "runs": [str(r) for r in args.runs]},
                      "runs": {str(r): measure(r, rounds, args.draws) for r in args.runs},
                      "prior": prior_kinds(args.runs[0], temps, args.draws) if temps else []})


if __name__ == "__main__":
    main()
