"""Lightning-backed generators: a LightningModule for the maths, a Generator wrapper for BaNEL."""

from __future__ import annotations

import copy
import logging
import signal
import tempfile
import time
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.seed import isolate_rng
from torch.utils.data import DataLoader, TensorDataset

from banel_framework.config import FitSettings, TrainerConfig
from banel_framework.interfaces import FitResult, Generator, Options
from banel_framework.samples import Samples
from banel_framework.seeding import torch_generator

for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
              "lightning.fabric.utilities.seed", "lightning.pytorch.utilities.seed"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*GPU available but not used.*")
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")


class SequenceModule(L.LightningModule):
    """A LightningModule over token sequences: exact log-likelihoods and weighted NLL training."""

    def __init__(self) -> None:
        super().__init__()
        self.fit_settings = FitSettings()

    @abstractmethod
    def sequence_log_prob(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log p(x) of each padded sequence, [B]."""

    def tempered_log_prob(self, tokens: torch.Tensor, lengths: torch.Tensor,
                          temperature: float) -> torch.Tensor:
        """log p_T(x) under sampling at `temperature` (each step's logits divided by it), [B]."""
        raise NotImplementedError(f"{type(self).__name__} cannot score at a temperature")

    @abstractmethod
    def sample_sequences(self, n: int, generator: torch.Generator, temperature: float
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tokens [n, T], lengths [n], log p at temperature 1 [n])."""

    def complete_sequences(self, prefix: torch.Tensor, prefix_lengths: torch.Tensor,
                           generator: torch.Generator, temperature: float
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens [n, T], lengths [n]): each row's prefix, then sampled tokens."""
        raise NotImplementedError(f"{type(self).__name__} cannot complete prefixes")

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments of a same-shaped model with fresh weights."""
        return dict(self.hparams)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        tokens, lengths, weights = batch
        width = int(lengths.max())
        lp = self.sequence_log_prob(tokens[:, :width], lengths)
        loss = -(weights * lp).mean()  # signed weights give a policy-gradient step
        self.log("loss", loss, on_step=False, on_epoch=True, batch_size=tokens.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        s = self.fit_settings
        return torch.optim.AdamW(self.parameters(), lr=s.lr, weight_decay=s.weight_decay)


class _LastLoss(Callback):
    """Remembers the last epoch's mean training loss."""

    def __init__(self) -> None:
        self.loss: float | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get("loss")
        if value is not None:
            self.loss = float(value)


class _RestoreOptimizer(Callback):
    """Loads a kept optimizer state into the fresh Trainer's optimizer, this fit's lr on top."""

    def __init__(self, state: dict[str, Any], settings: FitSettings) -> None:
        self.state, self.settings = state, settings

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        opt = trainer.optimizers[0]
        opt.load_state_dict(self.state)
        for group in opt.param_groups:
            group["lr"], group["weight_decay"] = self.settings.lr, self.settings.weight_decay


def resolve_device(cfg: TrainerConfig) -> torch.device:
    """The device sampling and scoring run on, following the trainer's accelerator."""
    acc = cfg.accelerator.lower()
    if acc in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if acc == "mps" and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_trainer(settings: FitSettings, cfg: TrainerConfig, root: str,
                 progress: bool = False) -> L.Trainer:
    """A fresh, quiet Trainer for one fit (a Trainer is never reused across fits)."""
    return L.Trainer(
        max_epochs=settings.epochs, max_steps=settings.max_steps or -1,
        accelerator=cfg.accelerator, devices=cfg.devices, precision=cfg.precision,
        logger=False, enable_checkpointing=False, enable_progress_bar=progress,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=root,
        callbacks=[_LastLoss()],
    )


class LightningGenerator(Generator):
    """A Generator whose model is a SequenceModule trained with Lightning."""

    module_cls: ClassVar[type[SequenceModule]]
    #: Sequences scored per forward pass.
    score_batch_size: int = 4096
    #: Draw Lightning's progress bar during fit (TaskContext.fit_prior turns it on).
    show_progress: bool = False
    keeps_optimizer: ClassVar[bool] = True

    def __init__(self, module: SequenceModule, trainer: TrainerConfig | None = None):
        self.module = module
        self.trainer_cfg = trainer or TrainerConfig()
        self.device = resolve_device(self.trainer_cfg)
        self._optimizer: dict[str, Any] | None = None  # kept by keep_optimizer fits

    @classmethod
    def build(cls, options: Options, trainer: TrainerConfig) -> LightningGenerator:
        return cls(cls.module_cls(**options.model_dump()), trainer)

    def _ready(self) -> SequenceModule:
        if next(self.module.parameters()).device != self.device:
            self.module.to(self.device)
        self.module.eval()
        return self.module

    @torch.no_grad()
    def sample(self, n: int, *, seed: int, temperature: float = 1.0) -> Samples:
        module = self._ready()
        gen = torch_generator(seed, self.device)
        tokens, lengths, lp = module.sample_sequences(n, gen, temperature)
        return Samples(tokens.cpu(), lengths.cpu(), lp.float().cpu())

    @torch.no_grad()
    def complete(self, prefixes: Samples, *, seed: int, temperature: float = 1.0) -> Samples:
        module = self._ready()
        gen = torch_generator(seed, self.device)
        tokens, lengths = module.complete_sequences(prefixes.tokens, prefixes.lengths, gen,
                                                    temperature)
        out = Samples(tokens.cpu(), lengths.cpu())
        out.log_prob = self.log_prob(out)  # of the whole sequence, prefix included
        return out

    @torch.no_grad()
    def log_prob(self, samples: Samples) -> torch.Tensor:
        return self._score(samples, 1.0)

    @torch.no_grad()
    def log_prob_at(self, samples: Samples, temperature: float) -> torch.Tensor:
        return self._score(samples, temperature)

    def _score(self, samples: Samples, temperature: float) -> torch.Tensor:
        module = self._ready()
        out = torch.zeros(len(samples))
        order = torch.argsort(samples.lengths)  # similar lengths together: little padding
        sorted_lens = samples.lengths[order].tolist()
        budget = self.score_batch_size * 16  # tokens per forward pass
        i = 0
        while i < len(order):
            j = min(len(order), i + self.score_batch_size)
            while j - i > 1 and (j - i) * max(sorted_lens[j - 1], 1) > budget:
                j = i + max(1, budget // max(sorted_lens[j - 1], 1), (j - i) // 2)
            idx = order[i:j]
            width = max(sorted_lens[j - 1], 1)
            toks = samples.tokens[idx, :width].to(self.device)
            lens = samples.lengths[idx].to(self.device)
            lp = (module.sequence_log_prob(toks, lens) if temperature == 1.0
                  else module.tempered_log_prob(toks, lens, temperature))
            out[idx] = lp.float().cpu()
            i = j
        return out

    def fit(self, samples: Samples, settings: FitSettings, *, seed: int,
            weights: torch.Tensor | None = None) -> FitResult:
        start = time.perf_counter()
        if settings.epochs == 0 or len(samples) == 0:
            return FitResult(0.0, 0)
        w = torch.ones(len(samples)) if weights is None else weights.float().cpu()
        data = TensorDataset(samples.tokens.cpu(), samples.lengths.cpu(), w)
        self.module.fit_settings = settings
        self.module.train()
        with isolate_rng(), tempfile.TemporaryDirectory() as root:
            L.seed_everything(seed, verbose=False)
            loader = DataLoader(data, batch_size=settings.batch_size, shuffle=True,
                                generator=torch_generator(seed), num_workers=0)
            trainer = make_trainer(settings, self.trainer_cfg, root, self.show_progress)
            if settings.keep_optimizer and self._optimizer is not None:
                trainer.callbacks.append(_RestoreOptimizer(self._optimizer, settings))
            try:
                fit_interruptibly(trainer, self.module, loader)
                last = next(c for c in trainer.callbacks if isinstance(c, _LastLoss))
                steps = trainer.global_step
                if settings.keep_optimizer:
                    self._optimizer = move_data_to_device(trainer.optimizers[0].state_dict(), "cpu")
            finally:  # keep only the weights: the Trainer holds the optimizer and its state
                for p in self.module.parameters():
                    p.grad = None
                self.module.trainer = None
                del trainer
        self.module.eval()
        return FitResult(time.perf_counter() - start, steps, last.loss)

    def optimizer_state(self) -> dict[str, Any] | None:
        return self._optimizer

    def load_optimizer_state(self, state: dict[str, Any] | None) -> None:
        self._optimizer = state

    def clone(self) -> LightningGenerator:
        module = copy.deepcopy(self.module).cpu()
        return type(self)(module, self.trainer_cfg)

    def fresh(self) -> LightningGenerator:
        return type(self)(type(self.module)(**self.module.architecture()), self.trainer_cfg)

    def save(self, path: Path) -> None:
        torch.save({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, path)

    def load(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.module.load_state_dict(state)

    def describe(self) -> dict[str, Any]:
        params = sum(p.numel() for p in self.module.parameters())
        return {"class": type(self).__name__, "parameters": params,
                "architecture": self.module.architecture()}


def fit_interruptibly(trainer: L.Trainer, module: L.LightningModule, loader: Any) -> None:
    """trainer.fit, with Ctrl-C raised as KeyboardInterrupt (Lightning turns it into exit 1
    and ignores further SIGINTs), so the CLI gives its usual "interrupted, resume" line."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, loader)
    except SystemExit:
        if trainer.interrupted:
            signal.signal(signal.SIGINT, handler)
            raise KeyboardInterrupt from None
        raise
