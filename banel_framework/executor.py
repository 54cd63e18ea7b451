"""The seam through which reserved oracle calls are dispatched; results come back as they finish.

The driver reserves every call in the ledger before dispatch, marks each chunk as called just
before it is submitted, and records each result as it arrives; an executor only runs calls on
the oracle it is bound to, it never touches the ledger.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from typing import Any

from .faults import FaultPolicy
from .samples import Samples

Job = tuple[list[str], list[str]]  # (keys, texts) of one oracle call


def _call(oracle: Any, keys: list[str], texts: list[str]) -> list[float]:
    return list(oracle(Samples.from_keys(keys), texts))


def call_oracle(oracle: Any, keys: list[str], texts: list[str],
                policy: FaultPolicy | None = None) -> list[float]:
    """One oracle call on a chunk under the fault policy: its rewards, in order."""
    return (policy or FaultPolicy()).call(_call, oracle, keys, texts)


class Executor(ABC):
    """Runs oracle calls, up to `workers` at once, on the oracle it is bound to."""

    def __init__(self, workers: int = 1):
        self.workers = workers
        self.oracle: Any = None
        self.policy = FaultPolicy()

    def bind(self, oracle: Any, policy: FaultPolicy | None = None) -> None:
        """The oracle every call goes to, and the time-out and retries of each call."""
        self.oracle = oracle
        self.policy = policy or FaultPolicy()

    @abstractmethod
    def submit(self, keys: list[str], texts: list[str]) -> Future:
        """Start one call; its rewards (or its exception) arrive through the future."""

    def map_unordered(self, jobs: list[Job], before: Callable[[int], None] | None = None
                      ) -> Iterator[tuple[int, Future]]:
        """(index, finished future) for each job as it finishes, at most `workers` in flight;
        `before(index)` runs in the caller's thread just before a job is submitted."""
        if jobs:
            self.start()
        pending: dict[Future, int] = {}
        todo = iter(enumerate(jobs))
        broken = False  # once a worker died, nothing more is sent to this pool
        while True:
            while not broken and len(pending) < self.workers:
                nxt = next(todo, None)
                if nxt is None:
                    break
                if before is not None:
                    before(nxt[0])
                try:
                    fut = self.submit(*nxt[1])
                except BrokenExecutor as exc:  # a worker died: the driver sends it again
                    fut = Future()
                    fut.set_exception(exc)
                    broken = True
                pending[fut] = nxt[0]
            if not pending:
                return  # jobs never sent stay pending in the ledger, for a fresh pool
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                broken = broken or isinstance(fut.exception(), BrokenExecutor)
                yield pending.pop(fut), fut

    def start(self) -> None:
        """Make the workers ready (before the first call is marked as made)."""

    def close(self) -> None:
        """Release the workers."""


class InlineExecutor(Executor):
    """Runs each call in the driver, one at a time (the default)."""

    def submit(self, keys: list[str], texts: list[str]) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(call_oracle(self.oracle, keys, texts, self.policy))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver through the future
            fut.set_exception(exc)
        return fut

    def map_unordered(self, jobs, before=None):
        for i, job in enumerate(jobs):  # lazily: the ledger is written between calls
            if before is not None:
                before(i)
            yield i, self.submit(*job)


class ThreadExecutor(Executor):
    """Up to `workers` calls at once in threads: for oracles that wait (a service, a queue)."""

    def __init__(self, workers: int = 1):
        super().__init__(workers)
        self.pool: ThreadPoolExecutor | None = None

    def submit(self, keys: list[str], texts: list[str]) -> Future:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="banel-oracle")
        return self.pool.submit(call_oracle, self.oracle, keys, texts, self.policy)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


_WORKER_ORACLE: Any = None
_WORKER_POLICY: FaultPolicy | None = None


def _init_worker(oracle: Any, policy: FaultPolicy | None, driver: int) -> None:
    global _WORKER_ORACLE, _WORKER_POLICY
    _WORKER_ORACLE, _WORKER_POLICY = oracle, policy
    threading.Thread(target=_exit_with_parent, args=(driver,), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    """End this worker once the driver is gone (a kill -9 of the driver would orphan it, blocked
    on its queue for ever, holding the oracle's memory)."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _ready() -> bool:
    return _WORKER_ORACLE is not None


def _worker_call(keys: list[str], texts: list[str]) -> list[float]:
    return call_oracle(_WORKER_ORACLE, keys, texts, _WORKER_POLICY)


class ProcessExecutor(Executor):
    """Up to `workers` calls at once in worker processes (spawned; the oracle is pickled once
    into each): for oracles that compute in Python."""

    def __init__(self, workers: int = 1):
        super().__init__(workers)
        self.pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers,
                                            mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker,
                                            initargs=(self.oracle, self.policy, os.getpid()))
            for fut in [self.pool.submit(_ready) for _ in range(self.workers)]:
                fut.result()  # every worker spawned, its oracle unpickled

    def submit(self, keys: list[str], texts: list[str]) -> Future:
        self.start()
        assert self.pool is not None
        return self.pool.submit(_worker_call, keys, texts)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
