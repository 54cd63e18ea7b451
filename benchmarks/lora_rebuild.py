"""RSS and adapters held after posterior rebuilds of a 20-round LoRA run (random-weight GPT-2).

A resumed or reported run rebuilds its posterior from the run directory (`restore`, then
`final_distribution`), loading every round's adapter checkpoint. The host now reuses an adapter
it already loaded from the same checkpoint; the baseline in the same script forgets them before
each rebuild, as 0.1.0 did (it loaded every adapter again).

    python benchmarks/lora_rebuild.py --quick     # 6 rounds, 3 rebuilds
    python benchmarks/lora_rebuild.py             # 20 rounds, 5 rebuilds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write  # noqa: E402
from hf_memory import rss_bytes  # noqa: E402

from banel_framework.config import FitSettings, TrainerConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds, rebuilds = (6, 3) if args.quick else (20, 5)
    from banel_plugins.hf_causal_lm import HFCausalLM, HFCausalLMOptions
    from banel_plugins.hf_tiny import tiny_causal_lm
    from banel_plugins.lora import LoraFailureModel, LoraOptions

    tmp = Path(tempfile.mkdtemp())
    model = tiny_causal_lm(tmp / "lm", n_embd=128, n_layer=4, n_head=4)
    opts = HFCausalLMOptions(model=str(model), prompt="Question: 3 + 5? Answer:", max_new_tokens=8)
    builder = LoraFailureModel(LoraOptions())
    first = HFCausalLM.build(opts, TrainerConfig())
    paths = []
    for r in range(rounds):  # the run: one fitted adapter a round, saved as its checkpoint
        phi, _ = builder.fit(first, first.sample(4, seed=r), FitSettings(epochs=1),
                             from_scratch=False, seed=r)
        paths.append(tmp / f"failure_model_r{r:03d}.pt")
        phi.save(paths[-1])
    out = {"rounds": rounds, "rebuilds": rebuilds}
    for label, forget in (("reuse", False), ("reload (0.1.0)", True)):
        prior = HFCausalLM.build(opts, TrainerConfig())  # a resumed process: a fresh prior
        start = rss_bytes()
        rows = []
        for i in range(rebuilds):
            if forget and prior.__dict__.get("_lora_host") is not None:
                prior.__dict__["_lora_host"].by_path.clear()
            phis = [builder.load(prior, p) for p in paths]
            host = phis[0].host
            rows.append({"rebuild": i + 1, "adapters": len(host.adapters()),
                         "rss_growth_mib": (rss_bytes() - start) / 2**20})
        out[label] = rows
        last = rows[-1]
        print(f"{label:15s} after {rebuilds} rebuilds: {last['adapters']} adapters held "
              f"({rounds} rounds), RSS +{last['rss_growth_mib']:.1f} MiB")
    a, b = out["reuse"][-1], out["reload (0.1.0)"][-1]
    out["adapters_ratio"] = b["adapters"] / a["adapters"]
    print(f"adapters held, reload / reuse: {out['adapters_ratio']:.1f}x")
    write("lora_rebuild" + ("_quick" if args.quick else ""), out)


if __name__ == "__main__":
    main()
