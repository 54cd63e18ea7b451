"""hf-causal-lm: a Hugging Face causal LM as a generator of completions of one fixed prompt."""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from banel_framework.config import FitSettings, TrainerConfig
from banel_framework.errors import ConfigError
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import FitResult, Options
from banel_framework.samples import Samples

from .hf_loading import DTYPES, eos_ids, load_pretrained, prompt_ids, require
from .lightning_generator import LightningGenerator, SequenceModule


class HFCausalLMOptions(Options):
    """Options of the hf-causal-lm generator."""

    model: str = Field(..., description="A local directory (config, weights, tokenizer) or a hub "
                                        "name; with HF_HUB_OFFLINE=1 only cached names load.")
    tokenizer: str | None = Field(None, description="Tokenizer directory or name (None: model's).")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    prompt: str = Field("", description="The text every completion continues (tasks set it).")
    chat: bool = Field(False, description="Wrap the prompt as one user turn in the chat template.")
    max_new_tokens: int = Field(256, ge=1, description="Completions without EOS are cut here.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32", description="Dtype the weights are loaded in (bfloat16 on a GPU).")
    attn_implementation: str | None = Field(
        None, description="Attention kernel, e.g. sdpa, eager, flash_attention_2 (None: default).")
    sample_batch_size: int = Field(64, ge=1, description="Completions generated together.")
    score_batch_size: int = Field(16, ge=1, description="Completions scored per forward pass.")
    rescore: bool | None = Field(
        None, description="Recompute sampled log-probs with a full forward pass (None: when "
                          "the weights are not float32, so they match log_prob exactly).")
    local_files_only: bool = Field(False, description="Never touch the network.")
    trust_remote_code: bool = Field(False, description="Allow model code from the hub.")


def _forward_params(model: Any) -> Any:
    """The keyword parameters of the underlying model's forward (through a peft wrapper)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inspect.signature(base.forward).parameters


class CausalLMModule(SequenceModule):
    """log p(completion | prompt) under a causal LM, or under one LoRA adapter of a shared host."""

    def __init__(self, model: Any, prompt: list[int], eos: list[int], max_new_tokens: int,
                 adapter: str | None = None, sample_batch_size: int = 64):
        super().__init__()
        self.model = model
        self.prompt = torch.tensor(prompt, dtype=torch.long)
        self.eos = torch.tensor(eos, dtype=torch.long)
        self.max_new_tokens = max_new_tokens
        self.adapter = adapter
        self.sample_batch_size = sample_batch_size
        params = _forward_params(model)  # transformers 5 says 'cache', earlier 'past_key_values'
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep = "logits_to_keep" in params

    def cpu(self) -> CausalLMModule:
        """Stay where we are: Lightning's teardown would move the (shared) weights off the GPU."""
        return self

    def architecture(self) -> dict[str, Any]:
        return {"model": type(self.model).__name__, "adapter": self.adapter}

    def _activate(self) -> None:
        if self.adapter is not None and self.model.active_adapter != self.adapter:
            self.model.set_adapter(self.adapter)

    def forward_lm(self, ids: torch.Tensor, *, mask: torch.Tensor | None = None,
                   cache: Any = None, keep: int = 0) -> Any:
        """The model's output on `ids`, under this module's adapter; `keep` last logits only."""
        self._activate()
        kw: dict[str, Any] = {"input_ids": ids, "use_cache": cache is not None or keep == 1}
        if mask is not None:
            kw["attention_mask"] = mask
        if cache is not None:
            kw[self._cache_kw] = cache
        if keep and self._keep:
            kw["logits_to_keep"] = keep
        return self.model(**kw)

    def sequence_log_prob(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Sum of log p(x_t | prompt, x_<t) over each completion's length."""
        b, w = tokens.shape
        if w == 0:
            return torch.zeros(b, device=tokens.device)
        prompt = self.prompt.to(tokens.device)
        p = prompt.numel()
        ids = torch.cat([prompt.expand(b, p), tokens], 1)
        valid = torch.arange(w, device=tokens.device)[None, :] < lengths[:, None]
        mask = torch.cat([torch.ones(b, p, dtype=torch.long, device=tokens.device),
                          valid.long()], 1)
        logits = self.forward_lm(ids, mask=mask, keep=w + 1).logits
        logits = logits[:, -(w + 1):-1]  # position p-1+j predicts completion token j
        lp = -F.cross_entropy(logits.float().reshape(b * w, -1), tokens.reshape(-1),
                              reduction="none").view(b, w)
        return (lp * valid).sum(1)

    @torch.no_grad()
    def sample_sequences(self, n: int, generator: torch.Generator, temperature: float
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        parts = [self._sample_chunk(min(self.sample_batch_size, n - i), generator, temperature)
                 for i in range(0, n, self.sample_batch_size)]
        width = max((t.shape[1] for t, _, _ in parts), default=0)
        toks = torch.cat([F.pad(t, (0, width - t.shape[1])) for t, _, _ in parts]) if parts else \
            torch.zeros((0, 0), dtype=torch.long)
        lens = torch.cat([x for _, x, _ in parts]) if parts else torch.zeros(0, dtype=torch.long)
        lps = torch.cat([x for _, _, x in parts]) if parts else torch.zeros(0)
        return toks, lens, lps

    def _next_cache(self, out: Any) -> Any:
        cache = out.get("cache") if self._cache_kw == "cache" else None
        return cache if cache is not None else out.get("past_key_values")

    def _sample_chunk(self, b: int, generator: torch.Generator, temperature: float
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample `b` completions with the KV cache; finished rows leave the batch and the cache."""
        dev = self.device
        limit = self.max_new_tokens
        eos = self.eos.to(dev)
        out = self.forward_lm(self.prompt.to(dev)[None], keep=1)  # the shared prompt, once
        cache = self._next_cache(out)
        cache.batch_repeat_interleave(b)
        logits = out.logits[:, -1].expand(b, -1)
        tokens = torch.zeros(b, limit, dtype=torch.long, device=dev)
        lengths = torch.full((b,), limit, dtype=torch.long, device=dev)
        lp = torch.zeros(b, device=dev)
        rows = torch.arange(b, device=dev)  # output row of each cache row
        for t in range(limit):
            logp = torch.log_softmax(logits.float(), -1)
            probs = logp.exp() if temperature == 1.0 else torch.softmax(logits.float() / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            tokens[rows, t] = nxt
            lp[rows] += logp.gather(1, nxt[:, None]).squeeze(1)  # at temperature 1
            ended = torch.isin(nxt, eos)
            if bool(ended.any()):
                lengths[rows[ended]] = t + 1
                keep = (~ended).nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                rows, nxt = rows[keep], nxt[keep]
                cache.batch_select_indices(keep)
            if t == limit - 1:
                break
            out = self.forward_lm(nxt[:, None], cache=cache, keep=1)
            cache = self._next_cache(out)
            logits = out.logits[:, -1]
        width = int(lengths.max()) if b else 0
        return tokens[:, :width], lengths, lp

    def configure_optimizers(self) -> torch.optim.Optimizer:
        s = self.fit_settings
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)


class HFCausalLM(LightningGenerator):
    """A Hugging Face causal LM over completions of a fixed prompt: batched sampling, exact scores."""

    Options = HFCausalLMOptions
    module_cls = CausalLMModule
    save_with_run = False  # the prior reloads from its directory; checkpoints hold fitted copies

    def __init__(self, module: CausalLMModule, trainer: TrainerConfig | None, options: HFCausalLMOptions,
                 tokenizer: Any):
        super().__init__(module, trainer)
        self.options = options
        self.tokenizer = tokenizer
        self.score_batch_size = options.score_batch_size

    @classmethod
    def build(cls, options: HFCausalLMOptions, trainer: TrainerConfig) -> HFCausalLM:
        if str(trainer.devices) != "1":
            raise ConfigError(f"trainer.devices: hf-causal-lm fits on one device (got "
                              f"{trainer.devices!r}); choose the GPU with CUDA_VISIBLE_DEVICES")
        model, tokenizer = load_pretrained(options)
        module = CausalLMModule(model, prompt_ids(tokenizer, options.prompt, options.chat,
                                                  options.model),
                                eos_ids(model, tokenizer), options.max_new_tokens,
                                sample_batch_size=options.sample_batch_size)
        return cls(module, trainer, options, tokenizer)

    # -- inference ---------------------------------------------------------------------------

    def _ready(self) -> CausalLMModule:
        self.module.to(self.device)  # cheap when already there; weights may be shared
        self.module.eval()
        return self.module

    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype of a mixed trainer precision (bf16-mixed, 16-mixed), else None."""
        prec = str(self.trainer_cfg.precision)
        return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(prec)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for sampling and scoring when the trainer's precision is mixed."""
        dtype = self.autocast_dtype()
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    @property
    def weight_dtype(self) -> torch.dtype:
        """The dtype of the (first) weights."""
        return next(self.module.model.parameters()).dtype

    @torch.no_grad()
    def sample(self, n: int, *, seed: int, temperature: float = 1.0) -> Samples:
        with self.autocast():
            samples = super().sample(n, seed=seed, temperature=temperature)
        rescore = self.options.rescore
        if rescore is None:
            rescore = self.weight_dtype != torch.float32 or self.autocast_dtype() is not None
        if rescore and len(samples):
            samples.log_prob = self.log_prob(samples)
        return samples

    @torch.no_grad()
    def log_prob(self, samples: Samples) -> torch.Tensor:
        module = self._ready()
        out = torch.zeros(len(samples))
        order = torch.argsort(samples.lengths)  # similar lengths together: little padding
        step = self.score_batch_size
        with self.autocast():
            for i in range(0, len(order), step):
                idx = order[i:i + step]
                width = int(samples.lengths[idx].max())
                toks = samples.tokens[idx, :width].to(self.device)
                lens = samples.lengths[idx].to(self.device)
                out[idx] = module.sequence_log_prob(toks, lens).float().cpu()
        return out

    # -- training and copies -----------------------------------------------------------------

    def trainable(self) -> Iterator[torch.nn.Parameter]:
        """The parameters a fit updates: all of them (an adapter-backed model: its adapter)."""
        return iter(self.module.model.parameters())

    def fit(self, samples: Samples, settings: FitSettings, *, seed: int,
            weights: torch.Tensor | None = None) -> FitResult:
        chosen = {id(p) for p in self.trainable()}
        for p in self.module.model.parameters():
            p.requires_grad_(id(p) in chosen)
        self.module.to(self.device)
        return super().fit(samples, settings, seed=seed, weights=weights)

    def _with_model(self, model: Any) -> HFCausalLM:
        m = self.module
        module = CausalLMModule(model, m.prompt.tolist(), m.eos.tolist(), m.max_new_tokens,
                                sample_batch_size=m.sample_batch_size)
        return HFCausalLM(module, self.trainer_cfg, self.options, self.tokenizer)

    def clone(self) -> HFCausalLM:
        return self._with_model(copy.deepcopy(self.module.model))

    def fresh(self) -> HFCausalLM:
        transformers = require("transformers", "the hf-causal-lm generator")
        model = transformers.AutoModelForCausalLM.from_config(
            self.module.model.config, trust_remote_code=self.options.trust_remote_code)
        return self._with_model(model.to(dtype=self.weight_dtype).eval())

    def describe(self) -> dict[str, Any]:
        params = sum(p.numel() for p in self.module.model.parameters())
        return {"class": type(self).__name__, "family": "hf-causal-lm",
                "model": self.options.model, "parameters": params,
                "dtype": str(self.weight_dtype).removeprefix("torch."),
                "prompt_tokens": int(self.module.prompt.numel()),
                "max_new_tokens": self.module.max_new_tokens, "device": str(self.device)}


@hookimpl
def register_generators(register):
    register("hf-causal-lm", HFCausalLM)


__all__ = ["DTYPES", "CausalLMModule", "HFCausalLM", "HFCausalLMOptions"]
