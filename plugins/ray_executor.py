"""ray: oracle calls as Ray tasks, on a cluster (RAY_ADDRESS) or on a local Ray started here.

Install with `pip install "banel-framework[ray]"`. The oracle is put in Ray's object store once;
each chunk is one task that runs the call under the run's fault policy (time-out, retries). A
worker that dies is retried by Ray (`max_retries`); the driver still reserves, marks and
records every call in the ledger, alone.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any

from banel_framework.errors import BanelError
from banel_framework.executor import Executor, call_oracle
from banel_framework.hookspecs import hookimpl

#: Times Ray re-runs a task whose worker process died.
WORKER_RETRIES = 3


def _ray():
    try:
        import ray
    except ImportError:
        raise BanelError('oracle.executor=ray needs Ray: pip install "banel-framework[ray]"'
                         ) from None
    return ray


class RayExecutor(Executor):
    """Up to `workers` calls in flight as Ray tasks (one CPU each)."""

    def __init__(self, workers: int = 1):
        super().__init__(workers)
        self._started = False
        self._oracle_ref: Any = None
        self._remote: Any = None

    def start(self) -> None:
        if self._remote is not None:
            return
        ray = _ray()
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            kwargs = {} if address else {"num_cpus": max(self.workers, 1)}
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **kwargs)
            self._started = True
        self._oracle_ref = ray.put(self.oracle)
        self._remote = ray.remote(num_cpus=1, max_retries=WORKER_RETRIES,
                                  retry_exceptions=False)(call_oracle)

    def submit(self, keys: list[str], texts: list[str]) -> Future:
        self.start()
        return self._remote.remote(self._oracle_ref, keys, texts, self.policy).future()

    def close(self) -> None:
        if self._started:
            _ray().shutdown()
        self._started, self._oracle_ref, self._remote = False, None, None


@hookimpl
def register_executors(register):
    register("ray", RayExecutor)
