"""Every oracle call goes through the ledger: reserved, marked, recorded; duplicates are free."""

from __future__ import annotations

import math
from collections.abc import Callable

from .errors import BanelError
from .executor import Executor, InlineExecutor
from .interfaces import Codec, RewardOracle
from .ledger import Ledger
from .samples import Samples


class OracleError(BanelError):
    """The oracle returned something other than one finite reward per sample."""


class LedgeredOracle:
    """Spends NREs only through the ledger, so none is lost, repeated or over budget."""

    def __init__(self, oracle: RewardOracle, ledger: Ledger, codec: Codec,
                 batch_size: int | None = None,
                 on_recorded: Callable[[list[tuple[str, str, float]]], None] | None = None,
                 on_progress: Callable[[int], None] | None = None,
                 executor: Executor | None = None):
        self.oracle = oracle
        self.executor = executor or InlineExecutor()
        self.executor.bind(oracle)
        self.ledger = ledger
        self.codec = codec
        self.batch_size = batch_size or getattr(oracle, "batch_size", 256) or 256
        self.on_recorded = on_recorded
        self.on_progress = on_progress

    def evaluate(self, round_: int, samples: Samples,
                 round_data: dict | None = None) -> list[float]:
        """Rewards for `samples`; new keys are reserved and evaluated, known ones read back."""
        keys = samples.keys()
        fresh: dict[str, int] = {}
        for i, k in enumerate(keys):
            if not self.ledger.is_known(k) and k not in fresh:
                fresh[k] = i
        if fresh:
            idx = list(fresh.values())
            texts = self.codec.decode_batch(samples.select(idx))
            self.ledger.reserve(round_, list(fresh), texts, round_data)
        self.flush()
        return [float(self.ledger.reward(k)) for k in keys]

    def flush(self) -> int:
        """Evaluate every pending reservation (those of a killed run too); returns how many.

        Chunks are dispatched through the executor and recorded in the ledger, by this
        process alone, as each one finishes."""
        pending = self.ledger.pending()
        chunks = [pending[i:i + self.batch_size] for i in range(0, len(pending), self.batch_size)]
        jobs = [([e.key for e in c], [e.text for e in c]) for c in chunks]

        def before(i: int) -> None:  # in this process: a crash shows the call was attempted
            self.ledger.mark_called(jobs[i][0])

        done = 0
        for i, fut in self.executor.map_unordered(jobs, before):
            keys, texts = jobs[i]
            rewards = self._check(fut.result(), len(keys))
            self.ledger.record(zip(keys, rewards))
            done += len(keys)
            if self.on_progress:
                self.on_progress(len(keys))
            if self.on_recorded:
                self.on_recorded([(k, t, r) for k, t, r in zip(keys, texts, rewards)])
        return done

    def _check(self, rewards: object, n: int) -> list[float]:
        try:
            out = [float(r) for r in rewards]  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise OracleError(f"oracle returned non-numeric rewards: {exc}") from None
        if len(out) != n:
            raise OracleError(f"oracle returned {len(out)} rewards for {n} samples")
        if not all(math.isfinite(r) for r in out):
            raise OracleError("oracle returned a non-finite reward")
        return out
