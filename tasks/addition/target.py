"""The target: a small transformer that answers "a+b=" with the digits of a+b, greedily."""

from __future__ import annotations

import math

import lightning as L
import torch
from banel_plugins.lightning_generator import fit_interruptibly
from banel_plugins.transformer import TransformerModule
from torch.utils.data import DataLoader, IterableDataset

from .arith import EOS, PAD, VOCAB, encode, random_queries


def target_max_len(max_digits: int) -> int:
    """Longest target sequence: two operands, '+', '=', the sum's digits, EOS."""
    return 2 * max_digits + 2 + (max_digits + 1) + 1


def target_view(query: list[int], max_digits: int, reverse: bool, pad: bool) -> list[int]:
    """What the target reads: operands padded to max_digits with PAD (and maybe reversed).

    Padding aligns digits of equal significance at fixed positions: '12+345=' reads as
    '__12+345=' (or '21___+543__=' reversed).
    """
    out, digits = [], []
    for t in query:
        if t < 10:
            digits.append(t)
            continue
        fill = [PAD] * max(0, max_digits - len(digits)) if pad and t in (10, 11) else []
        digits = digits[::-1] + fill if reverse else fill + digits  # right-aligned either way
        out.extend(digits)
        digits = []
        out.append(t)
    return out + digits


class TargetModule(TransformerModule):
    """The target transformer, trained on the answer tokens only, with a cosine schedule."""

    def __init__(self, max_digits: int, d_model: int = 128, n_layers: int = 3, n_heads: int = 4,
                 lr: float = 1e-3, warmup: int = 300, steps: int = 9000,
                 reverse_answer: bool = False, reverse_operands: bool = False,
                 pad_operands: bool = True):
        super().__init__(vocab_size=VOCAB + 1, eos_id=EOS, max_len=target_max_len(max_digits),
                         d_model=d_model, n_layers=n_layers, n_heads=n_heads)
        self.save_hyperparameters()

    def architecture(self) -> dict:
        keys = ("max_digits", "d_model", "n_layers", "n_heads", "lr", "warmup", "steps",
                "reverse_answer", "reverse_operands", "pad_operands")
        return {k: self.hparams[k] for k in keys}

    def training_step(self, batch, batch_idx):
        tokens, lengths, answer_start = batch
        lp = self.token_log_probs(tokens, lengths)
        pos = torch.arange(tokens.shape[1], device=tokens.device)[None, :]
        mask = (pos >= answer_start[:, None]) & (pos < lengths[:, None])
        loss = -(lp * mask).sum() / mask.sum()
        self.log("loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=0.01)

        def schedule(step: int) -> float:
            if step < hp.warmup:
                return (step + 1) / hp.warmup
            frac = min(1.0, (step - hp.warmup) / max(1, hp.steps - hp.warmup))
            return 0.5 * (1 + math.cos(math.pi * frac))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return [opt], [{"scheduler": sched, "interval": "step"}]

    def read(self, query: list[int]) -> list[int]:
        """The target's view of a query (see target_view)."""
        hp = self.hparams
        return target_view(query, hp.max_digits, hp.reverse_operands, hp.pad_operands)

    @torch.no_grad()
    def answer(self, queries: list[list[int]], batch_size: int = 4096) -> list[str]:
        """Greedy answers (digit strings) to tokenised queries that end with '='."""
        self.eval()
        out: list[str] = []
        for i in range(0, len(queries), batch_size):
            chunk = [self.read(q) for q in queries[i:i + batch_size]]
            plen = torch.tensor([len(q) for q in chunk])
            prefix = torch.zeros(len(chunk), int(plen.max()), dtype=torch.long)
            for j, q in enumerate(chunk):
                prefix[j, : len(q)] = torch.tensor(q)
            toks, lens, _ = self.decode(len(chunk), None, prefix=prefix.to(self.device),
                                        prefix_lengths=plen.to(self.device), greedy=True)
            for row, n, p in zip(toks.tolist(), lens.tolist(), plen.tolist()):
                ans = "".join(str(t) if t < 10 else ("" if t == EOS else "?") for t in row[p:n])
                out.append(ans[::-1] if self.hparams.reverse_answer else ans)
        return out


class QueryStream(IterableDataset):
    """An endless, seeded stream of batches of "a+b=c" examples."""

    def __init__(self, max_digits: int, batch_size: int, seed: int, reverse_answer: bool = False,
                 lengths: str = "uniform", reverse_operands: bool = False,
                 pad_operands: bool = True):
        self.max_digits, self.batch_size, self.seed = max_digits, batch_size, seed
        self.reverse_answer, self.lengths = reverse_answer, lengths
        self.reverse_operands, self.pad_operands = reverse_operands, pad_operands

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed)
        width = target_max_len(self.max_digits)
        while True:
            pairs = random_queries(self.batch_size, self.max_digits, gen, self.lengths)
            tokens = torch.zeros(self.batch_size, width, dtype=torch.long)
            lengths = torch.zeros(self.batch_size, dtype=torch.long)
            starts = torch.zeros(self.batch_size, dtype=torch.long)
            for i, (a, b) in enumerate(pairs):
                q = encode(f"{a}+{b}=")
                q = target_view(q, self.max_digits, self.reverse_operands, self.pad_operands)
                ans = str(a + b)[::-1] if self.reverse_answer else str(a + b)
                seq = q + encode(ans) + [EOS]
                tokens[i, : len(seq)] = torch.tensor(seq)
                lengths[i], starts[i] = len(seq), len(q)
            yield tokens, lengths, starts


class StopAtError(L.Callback):
    """Stop training once the greedy error on held-out queries is at most `error`."""

    def __init__(self, max_digits: int, seed: int, lengths: str, error: float, every: int,
                 n: int = 20_000):
        gen = torch.Generator().manual_seed(seed)
        self.pairs = random_queries(n, max_digits, gen, lengths)
        self.queries = [encode(f"{a}+{b}=") for a, b in self.pairs]
        self.error, self.every = error, every
        self.history: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step % self.every or step == 0:
            return
        answers = module.answer(self.queries)
        module.train()
        wrong = sum(str(a + b) != x for (a, b), x in zip(self.pairs, answers))
        self.history.append({"step": step, "error": wrong / len(self.pairs)})
        if wrong / len(self.pairs) <= self.error:
            trainer.should_stop = True


def train_target(max_digits: int, seed: int, *, d_model: int, n_layers: int, n_heads: int,
                 steps: int, batch_size: int, lr: float, warmup: int, reverse_answer: bool = False,
                 lengths: str = "uniform", reverse_operands: bool = False,
                 pad_operands: bool = True, accelerator: str = "cpu", progress: bool = True,
                 callbacks: list | None = None, stop_error: float | None = None,
                 check_every: int = 1000) -> TargetModule:
    """Pretrain the target deterministically (seeded data and init): `steps` of a cosine
    schedule, stopping early once the held-out error is at most `stop_error` (if given)."""
    L.seed_everything(seed, verbose=False)
    callbacks = list(callbacks or [])
    stopper = None
    if stop_error is not None:
        stopper = StopAtError(max_digits, seed + 2, lengths, stop_error, check_every)
        callbacks.append(stopper)
    module = TargetModule(max_digits, d_model, n_layers, n_heads, lr, warmup, steps,
                          reverse_answer, reverse_operands, pad_operands)
    loader = DataLoader(QueryStream(max_digits, batch_size, seed + 1, reverse_answer, lengths,
                                    reverse_operands, pad_operands),
                        batch_size=None, num_workers=0)
    trainer = L.Trainer(max_steps=steps, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        enable_progress_bar=progress, num_sanity_val_steps=0,
                        limit_train_batches=steps, max_epochs=1, callbacks=callbacks)
    fit_interruptibly(trainer, module, loader)
    module.stopped_at = trainer.global_step
    module.checks = stopper.history if stopper else []
    module.eval()
    return module.cpu()
