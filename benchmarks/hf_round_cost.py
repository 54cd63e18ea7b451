"""Time the parts of a BaNEL round on the Qwen2.5-0.5B architecture (random weights, no download).

Measures, through the hf-causal-lm and lora code paths: sampling a batch of completions, scoring
them, and one LoRA fit; then prices a round of the docs' configuration from those figures.
Random weights rarely emit EOS, so every completion runs to --new-tokens (an upper bound).

    python benchmarks/hf_round_cost.py --threads 1            # CPU, small batch (minutes)
    python benchmarks/hf_round_cost.py --batch 100 --new-tokens 384 --prompt-tokens 160  # a GPU
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).parent


def qwen_generator(device_precision: str, dtype: str, prompt_tokens: int, new_tokens: int,
                   batch: int):
    """An hf-causal-lm generator over a random Qwen2.5-0.5B-shaped model and a dummy prompt."""
    import transformers
    from banel_plugins.hf_causal_lm import CausalLMModule, HFCausalLM, HFCausalLMOptions

    from banel_framework.config import TrainerConfig

    cfg = transformers.Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        tie_word_embeddings=True, eos_token_id=151645, rope_theta=1e6)
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg).to(getattr(torch, dtype)).eval()
    prompt = torch.randint(0, 150000, (prompt_tokens,)).tolist()
    opts = HFCausalLMOptions(model="random-qwen2.5-0.5b", dtype=dtype, max_new_tokens=new_tokens,
                             sample_batch_size=batch, score_batch_size=min(batch, 16))
    module = CausalLMModule(model, prompt, [151645, 151643], new_tokens, sample_batch_size=batch)
    return HFCausalLM(module, TrainerConfig(precision=device_precision), opts, tokenizer=None)


def timed(fn):
    """(result, seconds), synchronising a GPU."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4, help="Completions sampled together.")
    ap.add_argument("--new-tokens", type=int, default=16, help="Tokens per completion.")
    ap.add_argument("--prompt-tokens", type=int, default=64, help="Prompt length.")
    ap.add_argument("--threads", type=int, help="torch threads (1 is fastest on a busy CPU).")
    ap.add_argument("--out", default=str(HERE / "results" / "hf_round_cost.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    gpu = torch.cuda.is_available()
    dtype, precision = ("bfloat16", "bf16-mixed") if gpu else ("float32", "32-true")
    from banel_plugins.lora import LoraFailureModel

    from banel_framework.config import FitSettings

    gen = qwen_generator(precision, dtype, args.prompt_tokens, args.new_tokens, args.batch)
    gen.sample(1, seed=0)  # warm up
    samples, t_sample = timed(lambda: gen.sample(args.batch, seed=1))
    _, t_score = timed(lambda: gen.log_prob(samples))
    fit = FitSettings(epochs=1, lr=1e-4, batch_size=min(8, args.batch))
    (phi, result), t_fit = timed(lambda: LoraFailureModel().fit(gen, samples, fit,
                                                                from_scratch=False, seed=0))
    _, t_phi = timed(lambda: phi.log_prob(samples))
    tokens = args.batch * args.new_tokens
    steps = max(1, -(-args.batch // fit.batch_size))
    out = {
        "device": torch.cuda.get_device_name() if gpu else f"cpu ({torch.get_num_threads()} threads)",
        "dtype": dtype, "precision": precision, "batch": args.batch,
        "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
        "sample_seconds": t_sample, "sample_step_seconds": t_sample / args.new_tokens,
        "score_seconds": t_score, "score_phi_seconds": t_phi,
        "lora_fit_seconds": t_fit, "lora_fit_steps": result.steps,
        "lora_fit_seconds_per_step": t_fit / steps,
        "sampled_tokens_per_second": tokens / t_sample,
        "scored_tokens_per_second": args.batch * (args.prompt_tokens + args.new_tokens) / t_score,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
