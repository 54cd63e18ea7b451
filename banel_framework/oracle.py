"""Every oracle call goes through the ledger: reserved, marked, recorded; duplicates are free."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import BrokenExecutor

from .errors import BanelError
from .executor import Executor, InlineExecutor
from .faults import FaultPolicy
from .interfaces import Codec, RewardOracle
from .ledger import Ledger
from .samples import Samples


class OracleError(BanelError):
    """The oracle returned something other than one finite reward per sample."""


class OracleFailures(BanelError):
    """Too large a share of the oracle calls failed after their retries."""


#: Restarts of a broken worker pool (a worker killed) within one flush before giving up.
MAX_RESTARTS = 3


class IdempotentCall:
    """Calls an oracle that asked for idempotency keys with one per sample, "RUN_ID/KEY"."""

    def __init__(self, oracle: RewardOracle, run_id: str):
        self.oracle, self.prefix = oracle, f"{run_id}/"
        self.batch_size = getattr(oracle, "batch_size", 256)

    def __call__(self, samples: Samples, texts: list[str]) -> list[float]:
        return self.oracle(samples, texts,
                           idempotency_keys=[self.prefix + k for k in samples.keys()])


class LedgeredOracle:
    """Spends NREs only through the ledger, so none is lost, repeated or over budget."""

    def __init__(self, oracle: RewardOracle, ledger: Ledger, codec: Codec,
                 batch_size: int | None = None,
                 on_recorded: Callable[[list[tuple[str, str, float]]], None] | None = None,
                 on_progress: Callable[[int], None] | None = None,
                 executor: Executor | None = None, *, policy: FaultPolicy | None = None,
                 task: str = "", binary: bool = False, max_failed_share: float = 1.0,
                 on_failed: Callable[[list[str], str], None] | None = None,
                 on_flight: Callable[[int], None] | None = None):
        self.oracle = oracle
        self.executor = executor or InlineExecutor()
        target = (IdempotentCall(oracle, ledger.run_id())
                  if getattr(oracle, "idempotency_keys", False) else oracle)
        self.executor.bind(target, policy)
        self.ledger = ledger
        self.codec = codec
        self.batch_size = batch_size or getattr(oracle, "batch_size", 256) or 256
        self.on_recorded = on_recorded
        self.on_progress = on_progress
        self.on_failed = on_failed
        self.on_flight = on_flight  # samples dispatched and not yet answered
        self.task, self.binary, self.max_failed_share = task, binary, max_failed_share

    def evaluate(self, round_: int, samples: Samples,
                 round_data: dict | None = None) -> list[float | None]:
        """Rewards for `samples` (None for a failed call); new keys are reserved and
        evaluated, known ones read back."""
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
        return [self.ledger.reward(k) for k in keys]

    def flush(self) -> int:
        """Evaluate every pending reservation (those of a killed run too); returns how many.

        Chunks are dispatched through the executor and recorded in the ledger, by this
        process alone, as each one finishes: rewards as `done`, a call that still raised after
        its retries as `failed` with its error. A broken worker pool is restarted and its
        calls sent again."""
        done = 0
        for _ in range(MAX_RESTARTS + 1):
            n, broken = self._flush_once()
            done += n
            if broken is None:
                return done
            self.executor.close()  # a worker died: the pool is unusable; start a fresh one
        raise BanelError(f"the oracle's worker pool broke {MAX_RESTARTS + 1} times "
                         f"({broken}); the ledger is intact, resume when it is fixed")

    def _flush_once(self) -> tuple[int, BaseException | None]:
        pending = self.ledger.pending()
        chunks = [pending[i:i + self.batch_size] for i in range(0, len(pending), self.batch_size)]
        jobs = [([e.key for e in c], [e.text for e in c]) for c in chunks]

        flying = 0

        def before(i: int) -> None:  # in this process: a crash shows the call was attempted
            nonlocal flying
            self.ledger.mark_called(jobs[i][0])
            flying += len(jobs[i][0])
            if self.on_flight:
                self.on_flight(flying)

        done, broken = 0, None
        for i, fut in self.executor.map_unordered(jobs, before):
            keys, texts = jobs[i]
            flying -= len(keys)
            if self.on_flight:
                self.on_flight(flying)
            exc = fut.exception()
            if isinstance(exc, BrokenExecutor):
                broken = exc  # left pending: sent again to a fresh pool
                continue
            if exc is not None and not isinstance(exc, Exception):
                raise exc  # KeyboardInterrupt, SystemExit: not the oracle's fault
            if exc is not None:
                self._failed(keys, f"{type(exc).__name__}: {exc}")
            else:
                rewards = self._check(fut.result(), keys, texts)
                self.ledger.record(zip(keys, rewards))
                if self.on_recorded:
                    self.on_recorded([(k, t, r) for k, t, r in zip(keys, texts, rewards)])
            done += len(keys)
            if self.on_progress:
                self.on_progress(len(keys))
        return done, broken

    def _failed(self, keys: list[str], error: str) -> None:
        """Record a failed chunk; stop once too large a share of the calls failed."""
        self.ledger.fail((k, error) for k in keys)
        if self.on_failed:
            self.on_failed(keys, error)
        n_failed = self.ledger.n_failed()
        n_done = len(self.ledger.evaluations(status="done"))
        share = n_failed / max(1, n_failed + n_done)
        if n_failed >= 5 and share > self.max_failed_share:
            raise OracleFailures(
                f"{n_failed} of {n_failed + n_done} oracle calls failed ({share:.0%} > "
                f"oracle.max_failed_share={self.max_failed_share:g}); the last: {error[:200]}. "
                "Fix the oracle, then continue with banel resume RUN_DIR")

    def _check(self, rewards: object, keys: list[str], texts: list[str]) -> list[float]:
        """One finite reward per sample (0 or 1 for a binary task), else a one-line error."""
        where = f"the oracle of task {self.task!r}" if self.task else "the oracle"
        try:
            out = [float(r) for r in rewards]  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise OracleError(f"{where} returned non-numeric rewards ({exc}) for a call on "
                              f"{len(keys)} samples, the first {texts[0]!r}") from None
        if len(out) != len(keys):
            raise OracleError(f"{where} returned {len(out)} rewards for {len(keys)} samples "
                              f"(the first {texts[0]!r}); it must return one per sample")
        for r, t in zip(out, texts):
            if not math.isfinite(r):
                raise OracleError(f"{where} returned {r} for sample {t!r}; rewards must be finite")
            if self.binary and r not in (0.0, 1.0):
                raise OracleError(f"{where} returned {r:g} for sample {t!r}; this task's "
                                  "rewards are 0 (failure) or 1 (success)")
        return out
