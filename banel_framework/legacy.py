"""Settings that moved since 0.1.0, where one method's options sat in the shared config."""

from __future__ import annotations

import copy
from typing import Any

from .config import RoundsConfig, RunConfig

#: The round machine's settings, which 0.1.0 kept in BaNEL's section.
ROUND_KEYS = tuple(RoundsConfig.model_fields)
CORE_KEYS = set(RunConfig.model_fields)


def migrate(data: dict[str, Any], method: str, moved: dict[str, str],
            own: dict[str, set[str]] | None = None) -> tuple[dict[str, Any], list[str]]:
    """`data` in today's layout, and a note per setting that moved.

    `moved` maps a top-level section to its new dotted place (from every registered method's
    `moved` table); `method_options` goes to the section of `method`; round settings found in
    a method's section go to `rounds` (unless that method's own options, `own`, define them)."""
    out = copy.deepcopy(data)
    notes: list[str] = []
    if "method_options" in out:
        opts = out.pop("method_options") or {}
        if opts:
            out.setdefault(method, {}).update(opts)
            notes.append(f"method_options -> {method}")
    for old, new in moved.items():
        if old in out and old not in CORE_KEYS:
            head, _, rest = new.partition(".")
            value = out.pop(old)
            out.setdefault(head, {})
            if rest:
                out[head][rest] = _merge(out[head].get(rest), value)
            notes.append(f"{old} -> {new}")
    for name, section in list(out.items()):
        if name in CORE_KEYS or not isinstance(section, dict):
            continue
        for key in ROUND_KEYS:
            if key in section and key not in (own or {}).get(name, set()):
                out.setdefault("rounds", {}).setdefault(key, section.pop(key))
                notes.append(f"{name}.{key} -> rounds.{key}")
    return out, notes


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        return {**b, **a}
    return b if a is None else a
