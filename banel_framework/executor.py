"""The seam through which reserved oracle calls are dispatched; results come back as they finish.

The driver reserves every call in the ledger before dispatch and records each result as it
arrives; an executor only runs calls, it never touches the ledger.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any


class Executor(ABC):
    """Runs oracle calls, possibly many at once; `workers` is how many may be in flight."""

    def __init__(self, workers: int = 1):
        self.workers = workers

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Start fn(*args); its result (or exception) arrives through the future."""

    def map_unordered(self, fn: Callable[..., Any], jobs: list[tuple[Any, ...]],
                      before: Callable[[int], None] | None = None
                      ) -> Iterator[tuple[int, Future]]:
        """(index, finished future) for each job, as they finish, at most `workers` in flight;
        `before(index)` runs in the caller's thread just before a job is submitted."""
        from concurrent.futures import FIRST_COMPLETED, wait

        pending: dict[Future, int] = {}
        todo = iter(enumerate(jobs))
        while True:
            while len(pending) < self.workers:
                nxt = next(todo, None)
                if nxt is None:
                    break
                if before is not None:
                    before(nxt[0])
                pending[self.submit(fn, *nxt[1])] = nxt[0]
            if not pending:
                return
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                yield pending.pop(fut), fut

    def close(self) -> None:
        """Release workers."""


class InlineExecutor(Executor):
    """Runs each call in the driver, one at a time (the default)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver through the future
            fut.set_exception(exc)
        return fut

    def map_unordered(self, fn, jobs, before=None):
        for i, args in enumerate(jobs):  # lazily: the ledger is written between calls
            if before is not None:
                before(i)
            yield i, self.submit(fn, *args)
