"""A test plugin: any task's oracle with faults injected (raises, hangs, bad rewards, dies)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from banel_framework import Options, RewardOracle, Samples, hookimpl


class FaultyOptions(Options):
    mode: Literal["flaky", "fails_on", "hangs_on", "value", "dies_once"] = "flaky"
    texts: list[str] = Field(default_factory=list, description="Samples the fault hits.")
    value: float = 2.0
    marker: str = ""
    seconds: float = 5.0
    keys_log: str = Field("", description="Ask for idempotency keys and append them here.")


class FaultyOracle(RewardOracle):
    """flaky: every call's first attempt raises; fails_on / hangs_on: calls holding one of
    `texts` always raise / sleep; value: `value` for those texts; dies_once: the worker process
    exits the first time (marker file)."""

    batch_size = 1

    def __init__(self, task, ctx, options: dict):
        self.inner = task.oracle(ctx)
        self.o = FaultyOptions.model_validate(options)
        self.tried: set[tuple[str, ...]] = set()
        self.idempotency_keys = bool(self.o.keys_log)

    def __call__(self, samples: Samples, texts: list[str], idempotency_keys=None) -> list[float]:
        o, hit = self.o, any(t in self.o.texts for t in texts)
        if o.keys_log:
            with open(o.keys_log, "a") as f:
                f.write("".join(k + "\n" for k in idempotency_keys))
        if o.mode == "flaky" and tuple(texts) not in self.tried:
            self.tried.add(tuple(texts))
            raise ConnectionError("service unavailable (first attempt)")
        if o.mode == "fails_on" and hit:
            raise RuntimeError(f"simulator crashed on {texts[0]}")
        if o.mode == "hangs_on" and hit:
            time.sleep(o.seconds)
        if o.mode == "dies_once" and not Path(o.marker).exists():
            Path(o.marker).write_text("died")
            os._exit(9)
        rewards = self.inner(samples, texts)
        if o.mode == "value":
            rewards = [o.value if t in o.texts else r for t, r in zip(texts, rewards)]
        return rewards


@hookimpl
def register_oracles(register):
    register("faulty", FaultyOracle)
