"""Oracle faults: a time-out per attempt and retries with exponential backoff (tenacity).

The policy runs where the call runs (in the driver, a thread or a worker process), so it is made
of plain numbers and pickles. A call that still fails after its retries raises its last error;
the driver then records the chunk as `failed` with that error (never as a negative).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from tenacity import Retrying, stop_after_attempt, wait_exponential


class OracleTimeout(TimeoutError):
    """One attempt of an oracle call ran past oracle.timeout."""


@dataclass(frozen=True)
class FaultPolicy:
    """Seconds an attempt may take (None: no limit), retries after the first, first backoff."""

    timeout: float | None = None
    retries: int = 0
    backoff: float = 1.0
    max_backoff: float = 60.0

    def call(self, fn: Any, *args: Any) -> Any:
        """fn(*args) under the time-out, retried with backoff; the last error is raised."""
        if self.retries <= 0:
            return self._attempt(fn, *args)
        retrying = Retrying(stop=stop_after_attempt(self.retries + 1), reraise=True,
                            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff))
        return retrying(self._attempt, fn, *args)

    def _attempt(self, fn: Any, *args: Any) -> Any:
        if self.timeout is None:
            return fn(*args)
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                box["error"] = exc

        # A daemon thread: an attempt past its time-out is abandoned (Python cannot stop it);
        # its result, if it ever comes, is dropped.
        worker = threading.Thread(target=target, daemon=True, name="banel-oracle-attempt")
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise OracleTimeout(f"no answer within oracle.timeout={self.timeout:g}s")
        if "error" in box:
            raise box["error"]
        return box["value"]
