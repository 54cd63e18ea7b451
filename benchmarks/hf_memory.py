"""Memory per BaNEL round of LoRA and full-copy failure models on a random-weight GPT-2 (math-qa).

Each failure-model kind runs `banel run --task math-qa` in its own process; after every round an
observer records the process RSS and the bytes of distinct parameter storages held by every live
hf-causal-lm model (shared weights count once). Also reports the exact parameter bytes of
Qwen2.5-0.5B and of one LoRA adapter on it, computed from the architecture on the meta device.

    python benchmarks/hf_memory.py --quick      # ~1 min on 2 CPU cores
    python benchmarks/hf_memory.py              # a 25M-parameter model, 5 rounds
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from banel_framework.rounds import release_memory, rss_mib

HERE = Path(__file__).parent
SIZES = {  # random-weight GPT-2 shapes
    "quick": {"n_embd": 256, "n_layer": 4, "n_head": 4, "rounds": 3, "m": 8, "tokens": 16},
    "full": {"n_embd": 512, "n_layer": 8, "n_head": 8, "rounds": 5, "m": 16, "tokens": 32},
}


def rss_bytes() -> int:
    """Resident set size of this process, after returning freed heap to the OS (as each round does)."""
    release_memory()
    return int((rss_mib() or 0.0) * 2**20)


def model_bytes() -> tuple[int, int]:
    """(bytes of distinct parameter storages, count) over every live hf-causal-lm model."""
    from banel_plugins.hf_causal_lm import HFCausalLM

    gc.collect()
    seen: dict[int, int] = {}
    models = [o for o in gc.get_objects() if isinstance(o, HFCausalLM)]
    for m in models:
        for p in m.module.parameters():
            st = p.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values()), len(models)


class Observer:
    """Records memory after each round."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def snapshot(self, round_: int, record: dict | None = None) -> None:
        params, n = model_bytes()
        row = {"round": round_, "rss_bytes": rss_bytes(), "param_bytes": params, "models": n}
        if record:
            ck = record.get("failure_model")
            row["checkpoint_bytes"] = (Path(self.run_dir) / ck).stat().st_size if ck else 0
            row["phi_seconds"] = record.get("phi_seconds")
            row["round_seconds"] = record.get("round_seconds")
        self.rows.append(row)

    def hooks(self):
        from banel_framework.hookspecs import hookimpl

        obs = self

        class Hooks:
            @hookimpl
            def banel_run_start(self, run):
                obs.run_dir = run.run_dir
                _ = run.prior
                obs.snapshot(0)

            @hookimpl
            def banel_round_end(self, run, record):
                obs.snapshot(record["round"], record)

        return Hooks()


def child(kind: str, model: str, size: dict, out: Path) -> dict:
    """One BaNEL run with failure models of `kind`; memory after every round."""
    from banel_framework.plugins import get_host
    from banel_framework.run import create_run, plan, user_layers
    from banel_framework.runner import execute

    obs = Observer()
    host = get_host()
    host.pm.register(obs.hooks(), name="hf-memory")
    m = size["m"]
    sets = [f"generator.options.model={model}", f"banel.failure_model.name={kind}",
            f"task_options.max_new_tokens={size['tokens']}", f"rounds.samples_per_round={m}",
            f"rounds.draw_batch_size={m}", "eval.samples=8", "eval.prior_samples=8",
            "banel.failure_model.fit.epochs=2", "banel.failure_model.fit.lr=1e-3",
            "banel.failure_model.fit.batch_size=8", "trainer.num_threads=1"]
    p = plan(user_layers(None, sets, task="math-qa", budget=m * size["rounds"], progress=False))
    t0 = time.time()
    execute(create_run(p, out))
    return {"kind": kind, "rows": obs.rows, "seconds": time.time() - t0}


def qwen_figures(r: int = 8) -> dict:
    """Exact parameter bytes of Qwen2.5-0.5B and one LoRA adapter (meta device: no weights)."""
    import warnings

    import peft
    import torch
    import transformers
    from banel_plugins.lora import LoraOptions

    cfg = transformers.Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        tie_word_embeddings=True)
    warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*")
    with torch.device("meta"):
        model = transformers.Qwen2ForCausalLM(cfg)
        base = sum(p.numel() for p in model.parameters())
        lora = peft.get_peft_model(model, LoraOptions(r=r).peft_config())
        adapter = sum(p.numel() for n, p in lora.named_parameters() if "lora_" in n)
    return {"model": "Qwen2.5-0.5B shape (random, meta device)", "parameters": base,
            "bf16_bytes": 2 * base, "lora_r": r, "lora_target": "all-linear",
            "adapter_parameters": adapter, "adapter_fp32_bytes": 4 * adapter,
            "adapter_bf16_bytes": 2 * adapter}


def growth(rows: list[dict], key: str) -> list[int]:
    """Per-round increase of `key`."""
    return [b[key] - a[key] for a, b in itertools.pairwise(rows)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="A small model and 3 rounds.")
    ap.add_argument("--out", default=str(HERE / "results" / "hf_memory.json"))
    ap.add_argument("--child", nargs=3, metavar=("KIND", "MODEL", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, model, size = args.child
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(child(kind, model, SIZES[size], Path(tmp) / "run")))
        return
    size = "quick" if args.quick else "full"
    shape = SIZES[size]
    from banel_plugins.hf_tiny import tiny_causal_lm

    results: dict = {"size": size, "shape": shape, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_causal_lm(Path(tmp) / "model", n_embd=shape["n_embd"],
                               n_layer=shape["n_layer"], n_head=shape["n_head"])
        results["model_file_bytes"] = (model / "model.safetensors").stat().st_size
        for kind in ("lora", "finetune"):
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            done = subprocess.run([sys.executable, __file__, "--child", kind, str(model), size],
                                  capture_output=True, text=True, env=env, check=False)
            if done.returncode:
                sys.exit(f"{kind} run failed:\n{done.stderr[-3000:]}")
            res = json.loads(done.stdout.strip().splitlines()[-1])
            rows = res["rows"]
            res["param_growth_per_round"] = growth(rows, "param_bytes")
            res["rss_growth_per_round"] = growth(rows, "rss_bytes")
            steady = rows[1:]  # round 1 also pays one-off costs (first fit, imports)
            res["rss_growth_per_round_after_round_1"] = (
                (steady[-1]["rss_bytes"] - steady[0]["rss_bytes"]) / (len(steady) - 1)
                if len(steady) > 1 else None)
            results["runs"][kind] = res
    results["qwen2.5-0.5b"] = qwen_figures()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    mb = 1 / 2**20
    print(f"random GPT-2 {shape['n_embd']}x{shape['n_layer']}: weights file "
          f"{results['model_file_bytes'] * mb:.1f} MiB; {shape['rounds']} rounds")
    print(f"{'kind':9} {'round':>5} {'params MiB':>11} {'+params':>9} {'RSS MiB':>9} {'+RSS':>8} "
          f"{'ckpt MiB':>9}")
    for kind, res in results["runs"].items():
        rows = res["rows"]
        for i, row in enumerate(rows):
            dp = row["param_bytes"] - rows[i - 1]["param_bytes"] if i else 0
            dr = row["rss_bytes"] - rows[i - 1]["rss_bytes"] if i else 0
            print(f"{kind:9} {row['round']:>5} {row['param_bytes'] * mb:>11.2f} {dp * mb:>9.3f} "
                  f"{row['rss_bytes'] * mb:>9.1f} {dr * mb:>8.1f} "
                  f"{row.get('checkpoint_bytes', 0) * mb:>9.3f}")
    for kind, res in results["runs"].items():
        slope = res["rss_growth_per_round_after_round_1"]
        print(f"{kind}: params +{res['param_growth_per_round'][-1] * mb:.3f} MiB a round; RSS "
              f"+{slope * mb:.1f} MiB a round after round 1; run {res['seconds']:.0f} s")
    q = results["qwen2.5-0.5b"]
    print(f"Qwen2.5-0.5B: {q['parameters']:,} parameters = {q['bf16_bytes'] * mb:.0f} MiB in bf16 "
          f"(a full copy a round); one LoRA r={q['lora_r']} all-linear adapter: "
          f"{q['adapter_parameters']:,} parameters = {q['adapter_fp32_bytes'] * mb:.1f} MiB fp32")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
