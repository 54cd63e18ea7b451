"""ray: oracle calls on a pool of Ray actors, on a cluster (RAY_ADDRESS) or a local Ray started here.

Install with `pip install "banel-framework[ray]"`. Each of `oracle.workers` actors holds the
oracle, unpickled once, and runs one call at a time under the run's fault policy (time-out,
retries). An actor whose process dies is restarted by Ray and its call re-run
(`max_restarts`, `max_task_retries`); the driver still reserves, marks and records every call in
the ledger, alone.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

from banel_framework.errors import BanelError
from banel_framework.executor import Executor, call_oracle
from banel_framework.hookspecs import hookimpl

#: Times Ray restarts an actor whose process died, and re-runs the call it was running.
WORKER_RETRIES = 3


def _ray():
    try:
        import ray
    except ImportError:
        raise BanelError('oracle.executor=ray needs Ray: pip install "banel-framework[ray]"'
                         ) from None
    return ray



def _connect_error(address: str | None, exc: BaseException) -> str:
    """One line on why ray.init failed, and what usually fixes it."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"the Ray cluster at RAY_ADDRESS={address}" if address else "a local Ray"
    hint = ""
    if address and address != "auto" and not os.environ.get("RAY_AUTH_MODE"):
        hint = ("; a cluster with token authentication (Ray's default for `ray start`) needs "
                "RAY_AUTH_MODE=token and its token (~/.ray/auth_token or RAY_AUTH_TOKEN)")
    return f"oracle.executor=ray: cannot connect to {where}: {first}{hint}"

class OracleActor:
    """One worker: the oracle, built once, answering one call at a time."""

    def __init__(self, oracle: Any, policy: Any):
        self.oracle, self.policy = oracle, policy

    def ready(self) -> bool:
        return True

    def call(self, keys: list[str], texts: list[str]) -> list[float]:
        return call_oracle(self.oracle, keys, texts, self.policy)


class RayExecutor(Executor):
    """Up to `workers` calls in flight, one per Ray actor (one CPU each)."""

    def __init__(self, workers: int = 1):
        super().__init__(workers)
        self._started = False
        self._actors: list[Any] = []
        self._idle: deque = deque()
        self._lock = threading.Lock()
        self._oracle_ref: Any = None

    def start(self) -> None:
        if self._actors:
            return
        ray = _ray()
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            kwargs = {} if address else {"num_cpus": max(self.workers, 1)}
            try:
                ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                         configure_logging=False, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BanelError(_connect_error(address, exc)) from None
            self._started = True
        actor = ray.remote(num_cpus=1, max_restarts=WORKER_RETRIES,
                           max_task_retries=WORKER_RETRIES)(OracleActor)
        self._oracle_ref = ray.put(self.oracle)  # held: a restarted actor is built from it
        self._actors = [actor.remote(self._oracle_ref, self.policy) for _ in range(self.workers)]
        ray.get([a.ready.remote() for a in self._actors])  # all up before the first call
        self._idle = deque(self._actors)

    def _take(self) -> Any:
        for _ in range(10_000):  # a finished call's actor is handed back by its callback
            with self._lock:
                if self._idle:
                    return self._idle.popleft()
            time.sleep(0.001)
        raise RuntimeError("no idle Ray actor")  # pragma: no cover - more calls than workers

    def submit(self, keys: list[str], texts: list[str]) -> Future:
        self.start()
        actor = self._take()
        fut = actor.call.remote(keys, texts).future()

        def release(_: Future) -> None:
            with self._lock:
                self._idle.append(actor)

        fut.add_done_callback(release)
        return fut

    def close(self) -> None:
        if self._started:
            _ray().shutdown()
        self._started, self._actors, self._idle = False, [], deque()
        self._oracle_ref = None


@hookimpl
def register_executors(register):
    register("ray", RayExecutor)
