"""Helpers shared by the benchmark scripts: timing, JSON output, environment facts."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

#: Where figures go (BANEL_BENCH_RESULTS redirects them, e.g. for the tests).
RESULTS = Path(os.environ.get("BANEL_BENCH_RESULTS") or Path(__file__).parent / "results")

#: Seed of the rewarded proposals behind shared rate curves (rate_curve.py, digits.py --draws).
CURVE_SEED = 4242


def best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The fastest of `repeats` wall-clock timings of fn() (noise only ever adds time)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def environment() -> dict[str, Any]:
    """Machine facts to store beside the figures."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "cuda": torch.cuda.is_available(), "machine": platform.machine()}


def parallel(fn: Callable[..., Any], calls: list[tuple], jobs: int) -> list[Any]:
    """fn(*args) for each args in calls, in `jobs` single-threaded processes (1: in this one)."""
    if jobs <= 1:
        return [fn(*args) for args in calls]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp.get_context("spawn"), initializer=_one_thread,
                             initargs=(os.getpid(),)) as pool:
        return list(pool.map(fn, *zip(*calls)))


def _one_thread(parent: int | None = None) -> None:
    """A worker: one thread, and it exits when the benchmark that started it is killed."""
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    torch.set_num_threads(1)
    if parent is not None:
        import threading

        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int, every: float = 1.0) -> None:
    """Exit this process once its parent is gone (a killed benchmark leaves no orphans; its
    runs resume from their ledgers)."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def write(name: str, payload: dict[str, Any]) -> Path:
    """benchmarks/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**payload, "environment": environment()}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
