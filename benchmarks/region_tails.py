"""Where a BaNEL run's failure regions reject: fresh samples of the proposal after round R,
split into tenths by their log-likelihood under that proposal, with the share each tenth loses
to the regions and how often its samples succeed where kept and where rejected (evaluated
off-budget with the task's evaluation oracle; no NRE).

  python benchmarks/region_tails.py RUN_DIR... [--round R] [--samples 100000] [--mixture] [--name NAME]
  python benchmarks/region_tails.py RUN_DIR --round R --refit 1,10 [--samples 20000] [--name NAME]

A failure model fitted on all the negatives so far learns the earlier, broader proposals they
were drawn from, so its ratio to the current proposal is highest where that proposal is least
likely: regions that reject the tails reject the atypical samples, which is where a rare
failure mode (on addition-attack, operands with a leading zero) lives. With
banel.posterior.reference=control the denominator is fitted the same way on fresh samples;
with --mixture the run's failure models are scored against the mixture of the proposals that
drew their negatives instead (banel.posterior.reference=mixture, same regions). With
--refit, round R's failure model is fitted again
from the same start (phi's parent after round R-1, no counter-examples) at each number of
epochs, once on all the negatives so far and once on round R's only (banel.failure_model.data),
and the tenths are those of that one region against the reference: whether the tails come from
fitting negatives drawn from earlier, broader proposals against the current one. Writes
results/NAME.json.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import torch
from banel_plugins.banel import replay
from common import write
from region_blind_spots import LEADING_ZERO

from banel_framework.posterior import Posterior, RejectionRegion
from banel_framework.run import open_run
from banel_framework.samples import Samples


def as_mixture(run, post: Posterior) -> Posterior:
    """The same failure models, each against the mixture of the proposals that drew its
    negatives (banel.posterior.reference=mixture), instead of the run's own reference."""
    regions = []
    for reg in post.regions:
        evs = run.ledger.evaluations(upto_round=reg.round, status="done")
        drew = Counter(e.round for e in evs if (e.reward or 0) <= 0)
        regions.append(RejectionRegion(reg.round, reg.failure_model,
                                       run.method._mixture(run, reg.round, None, drew),
                                       reg.slack))
    return Posterior(post.prior, post.proposal, post.scorer, regions, post.temperature,
                     post.excluded)


def tails(run_dir: Path, upto: int | None, samples: int, seed: int = 7,
          mixture: bool = False) -> dict:
    """The proposal's samples after round `upto` (default: the last) by tenths of log q."""
    run = open_run(run_dir)
    state = None
    for state in replay(run):
        if upto is not None and state.round == upto:
            break
    if state is None:
        raise SystemExit(f"{run_dir}: no round to read")
    post = as_mixture(run, state.posterior) if mixture else state.posterior
    with torch.no_grad():
        s = post.proposal.sample(samples, seed=seed, temperature=post.temperature)
        log_q = post.proposal.log_prob(s).detach().cpu().float()
        rejected, _ = post.reject_mask(s)
        last = post.regions[-1] if post.regions else None
        log_ratio = (last.failure_model.log_prob(s) - last.slack
                     - last.reference.log_prob(s)).detach().cpu().float() \
            if last is not None else torch.zeros(len(s))
    texts = run.codec.decode_batch(s)
    won = torch.tensor([r > 0 for r in run.task.eval_oracle(run.context)(s, texts)])
    lz = torch.tensor([bool(LEADING_ZERO.search(t)) for t in texts])
    order = torch.argsort(log_q)  # tenths by rank, so that ties cannot empty one
    rows = []
    for part in order.chunk(10):
        m = torch.zeros(len(log_q), dtype=torch.bool)
        m[part] = True
        kept, rej = m & ~rejected, m & rejected
        rows.append({"log_q": [float(log_q[part].min()), float(log_q[part].max())],
                     "n": int(m.sum()), "rejected": float(rejected[m].double().mean()),
                     "successes_kept": [int(kept.sum()), int((kept & won).sum())],
                     "successes_rejected": [int(rej.sum()), int((rej & won).sum())],
                     "last_log_ratio": [float(log_ratio[part].mean()),
                                        float(log_ratio[part].std())]})
    return {"run": str(run_dir), "round": state.round, "regions": len(post.regions),
            "reference": "mixture" if mixture else run.method.options.posterior.reference,
            "samples": samples, "rejected": float(rejected.double().mean()),
            "leading_zero": [int(lz.sum()), int((lz & rejected).sum()), int((lz & won).sum())],
            "tenths": rows}


def refits(run_dir: Path, r: int, epochs: list[int], samples: int, seed: int = 7) -> dict:
    """Round r's region refitted on all negatives and on the round's own, at each epoch count."""
    run = open_run(run_dir)
    method = run.method
    before = [st for st in replay(run) if st.round == r - 1]
    if not before:
        raise SystemExit(f"{run_dir}: round {r - 1} is not in the ledger")
    pre = before[0].posterior
    fm = method.options.failure_model
    with torch.no_grad():
        s = pre.proposal.sample(samples, seed=seed, temperature=pre.temperature)
        log_q = pre.proposal.log_prob(s).detach().cpu().float()
        log_ref = method._reference(pre).log_prob(s).detach().cpu().float()
    lz = torch.tensor([bool(LEADING_ZERO.search(t)) for t in run.codec.decode_batch(s)])
    order = torch.argsort(log_q)
    rows = []
    for data in ("all", "round"):
        evs = run.ledger.evaluations(upto_round=r, status="done") if data == "all" \
            else run.ledger.evaluations(round_=r, status="done")
        negs = Samples.from_keys([e.key for e in evs if (e.reward or 0) <= 0])
        for ep in epochs:
            phi, _ = method.failure_builder.fit(
                method._parent(pre), negs, fm.fit.model_copy(update={"epochs": ep}),
                from_scratch=fm.init == "scratch", seed=run.seed(r, "failure_model"))
            with torch.no_grad():
                rej = method.scorer.reject(log_ref, phi.log_prob(s).detach().cpu().float()).cpu()
            rows.append({"data": data, "negatives": len(negs), "epochs": ep,
                         "rejected": float(rej.double().mean()),
                         "leading_zero": [int(lz.sum()), int(rej[lz].sum())],
                         "tenths": [float(rej[p].double().mean()) for p in order.chunk(10)]})
    return {"run": str(run_dir), "round": r, "samples": samples, "refits": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--round", type=int, default=None, help="the posterior after this round")
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--refit", default=None,
                    help="comma-separated epochs: refit round R's region (see above)")
    ap.add_argument("--mixture", action="store_true",
                    help="score the run's failure models against the mixture of the proposals "
                         "that drew their negatives (banel.posterior.reference=mixture)")
    ap.add_argument("--name", default=None, help="write results/<name>.json")
    args = ap.parse_args()
    if args.refit:
        if args.round is None:
            raise SystemExit("--refit needs --round")
        out = [refits(d, args.round, [int(e) for e in args.refit.split(",")], args.samples)
               for d in args.runs]
        for t in out:
            print(f"{t['run']}: round {t['round']}'s region refitted; tenths least likely first")
            for row in t["refits"]:
                n_lz, rej_lz = row["leading_zero"]
                print(f"  data={row['data']:<5} ({row['negatives']} negatives), {row['epochs']:>2} "
                      f"epochs: rejected {row['rejected']:.3f}, leading zero {rej_lz}/{n_lz}; "
                      + " ".join(f"{x:.2f}" for x in row["tenths"]))
        if args.name:
            write(args.name, {"args": [str(r) for r in args.runs], "round": args.round,
                              "samples": args.samples, "runs": out})
        return
    out = []
    for d in args.runs:
        t = tails(d, args.round, args.samples, mixture=args.mixture)
        out.append(t)
        n_lz, rej_lz, won_lz = t["leading_zero"]
        print(f"{d}: after round {t['round']} ({t['regions']} regions, reference "
              f"{t['reference']}): {t['rejected']:.3f} of {t['samples']} proposal "
              f"samples rejected; leading zero: {n_lz} samples, {rej_lz} rejected, {won_lz} succeed")
        print("  tenth (least likely first): log q range, rejected, kept succeed, rejected "
              "succeed, the last region's log p_phi - log p_ref (mean, std)")
        for i, row in enumerate(t["tenths"]):
            (nk, kk), (nr, kr) = row["successes_kept"], row["successes_rejected"]
            m, sd = row["last_log_ratio"]
            print(f"  {i + 1:>2} [{row['log_q'][0]:7.1f}, {row['log_q'][1]:7.1f}] "
                  f"{row['rejected']:.3f}  {kk}/{nk}  {kr}/{nr}  {m:.2f} {sd:.2f}")
    if args.name:
        write(args.name, {"args": [str(r) for r in args.runs], "round": args.round,
                          "samples": args.samples, "runs": out})


if __name__ == "__main__":
    main()
