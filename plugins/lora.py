"""lora: failure models as LoRA adapters over one shared base, one small adapter per round."""

from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities.seed import isolate_rng
from pydantic import Field

from banel_framework.config import FitSettings
from banel_framework.errors import ConfigError
from banel_framework.hookspecs import hookimpl
from banel_framework.interfaces import FailureModelBuilder, FitResult, Generator, Options
from banel_framework.samples import Samples

from .hf_causal_lm import CausalLMModule, HFCausalLM
from .hf_loading import require


class LoraOptions(Options):
    """Options of the lora failure model."""

    r: int = Field(8, ge=1, description="Rank of each adapter.")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter's input in fits.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules that get adapters: 'all-linear' or a list of names.")

    def peft_config(self) -> Any:
        """The peft LoraConfig these options describe."""
        peft = require("peft", "the lora failure model")
        return peft.LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                               target_modules=self.target_modules, bias="none")


def shared_skeleton(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the module tree whose parameters and buffers are the original's (no new weights)."""
    memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    return copy.deepcopy(model, memo)


class LoraHost:
    """One peft model over the parent's weights (shared, not copied) holding every adapter."""

    def __init__(self, parent: HFCausalLM):
        self.skeleton: Any = shared_skeleton(parent.module.model)
        self.model: Any = None  # the PeftModel, made with the first adapter
        self.parent_module = parent.module
        self.trainer_cfg, self.options, self.tokenizer = (parent.trainer_cfg, parent.options,
                                                          parent.tokenizer)
        self.count = 0
        #: Adapters by the checkpoint they were saved to or loaded from: a posterior rebuilt
        #: from a run directory reuses them instead of loading every round's adapter again.
        self.by_path: dict[str, LoraGenerator] = {}

    def adapters(self) -> list[str]:
        """Names of the adapters the host holds."""
        return [] if self.model is None else list(self.model.peft_config)

    @classmethod
    def of(cls, parent: HFCausalLM) -> LoraHost:
        """The host of `parent`'s adapters (made on first use, kept on the parent)."""
        host = parent.__dict__.get("_lora_host")
        if host is None:
            host = parent.__dict__["_lora_host"] = cls(parent)
        return host

    def add(self, options: LoraOptions, seed: int) -> LoraGenerator:
        """A new adapter (B = 0, so it starts equal to the base), seeded for reproducibility."""
        peft = require("peft", "the lora failure model")
        self.count += 1
        name = f"phi{self.count}"
        with isolate_rng(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*fan_in_fan_out is set to False.*")  # GPT-2
            warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*")
            torch.manual_seed(seed)
            if self.model is None:
                self.model = peft.get_peft_model(self.skeleton, options.peft_config(),
                                                 adapter_name=name)
            else:
                self.model.add_adapter(name, options.peft_config())
        self.model.set_adapter(name)
        p = self.parent_module
        module = CausalLMModule(self.model, p.prompt.tolist(), p.eos.tolist(), p.max_new_tokens,
                                adapter=name, sample_batch_size=p.sample_batch_size)
        return LoraGenerator(module, self, options)

    def adapter_parameters(self, name: str) -> Iterator[torch.nn.Parameter]:
        """The parameters of one adapter."""
        tag = f".{name}."
        return (p for n, p in self.model.named_parameters() if tag in n)


class LoraGenerator(HFCausalLM):
    """The base model with one LoRA adapter of a shared host: samples, scores, fits the adapter."""

    def __init__(self, module: CausalLMModule, host: LoraHost, lora: LoraOptions):
        super().__init__(module, host.trainer_cfg, host.options, host.tokenizer)
        self.host = host
        self.lora = lora

    @property
    def adapter(self) -> str:
        """The adapter's name inside the host."""
        assert self.module.adapter is not None
        return self.module.adapter

    def trainable(self) -> Iterator[torch.nn.Parameter]:
        return self.host.adapter_parameters(self.adapter)

    def adapter_bytes(self) -> int:
        """Memory held by this adapter's weights."""
        return sum(p.numel() * p.element_size() for p in self.trainable())

    def save(self, path: Path) -> None:
        peft = require("peft", "the lora failure model")
        state = peft.get_peft_model_state_dict(self.host.model, adapter_name=self.adapter)
        torch.save({"lora": self.lora.model_dump(),
                    "weights": {k: v.detach().cpu() for k, v in state.items()}}, path)
        self.host.by_path[_path_key(path)] = self

    def load(self, path: Path) -> None:
        peft = require("peft", "the lora failure model")
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or "weights" not in saved:
            raise ConfigError(f"{path} is not a LoRA adapter checkpoint")
        result = peft.set_peft_model_state_dict(self.host.model, saved["weights"],
                                                adapter_name=self.adapter)
        missing = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
        if missing:
            raise ConfigError(f"{path}: adapter weights do not fit this model ({missing[0]})")

    def clone(self) -> LoraGenerator:
        twin = self.host.add(self.lora, seed=0)
        with torch.no_grad():
            for a, b in zip(self.trainable(), twin.trainable()):
                b.copy_(a)
        return twin

    def fresh(self) -> LoraGenerator:
        return self.host.add(self.lora, seed=self.host.count)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "adapter": self.adapter, "adapter_bytes": self.adapter_bytes(),
                "lora": self.lora.model_dump()}


class LoraFailureModel(FailureModelBuilder):
    """p_phi = the parent plus a LoRA adapter fitted on negatives; the base weights are shared."""

    Options = LoraOptions
    accepts_counter_examples = True

    def __init__(self, options: LoraOptions | None = None):
        super().__init__(options)
        require("peft", "the lora failure model")  # fail before any NRE is spent

    def _host(self, parent: Generator) -> LoraHost:
        if not isinstance(parent, HFCausalLM) or isinstance(parent, LoraGenerator):
            raise ConfigError("banel.failure_model.name=lora needs the hf-causal-lm generator "
                              f"(got {type(parent).__name__}); use banel.failure_model.name=finetune")
        return LoraHost.of(parent)

    def check(self, config) -> None:
        if config.init == "scratch":
            raise ConfigError("banel.failure_model.init=scratch: a LoRA adapter always starts from "
                              "its base; use init=prior or banel.failure_model.name=finetune")

    def fit(self, parent: Generator, negatives: Samples, settings: FitSettings, *,
            from_scratch: bool, seed: int, counter_examples: Samples | None = None,
            counter_weight: float = 0.0) -> tuple[LoraGenerator, FitResult]:
        if from_scratch:
            raise ConfigError("banel.failure_model.init=scratch: a LoRA adapter always starts from "
                              "its base; set init=prior (in config.yaml to resume this run) or "
                              "use banel.failure_model.name=finetune")
        phi = self._host(parent).add(self.options, seed)
        result = self.fit_on(phi, negatives, settings, seed=seed,
                             counter_examples=counter_examples, counter_weight=counter_weight)
        result.extra["adapter_bytes"] = phi.adapter_bytes()
        return phi, result

    def load(self, parent: Generator, path: Path) -> LoraGenerator:
        host = self._host(parent)
        known = host.by_path.get(_path_key(path))
        if known is not None:  # failure models are frozen once fitted: share the adapter
            return known
        saved = torch.load(path, map_location="cpu", weights_only=True)
        lora = LoraOptions(**saved["lora"]) if isinstance(saved, dict) and "lora" in saved \
            else self.options
        phi = host.add(lora, seed=0)
        phi.load(path)
        host.by_path[_path_key(path)] = phi
        return phi


def _path_key(path: Path) -> str:
    """A checkpoint's identity: its resolved path and modification time."""
    p = Path(path).resolve()
    return f"{p}@{p.stat().st_mtime_ns}"


@hookimpl
def register_failure_models(register):
    register("lora", LoraFailureModel)
