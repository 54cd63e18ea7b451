"""The registered components as rows, cached so that `banel tasks` need not import every plugin.

Loading the plugins imports torch and Lightning (seconds). The rows that `banel tasks`,
`banel methods` and `banel plugins` print depend only on the installed entry points and the
plugins' source files, so they are kept in one JSON file under the cache directory, keyed by a
fingerprint of both (names, versions, and the size and modification time of every `.py` file
of each plugin's top-level package). Any change there, or in the plugin-selection environment
variables, rebuilds the listing on the next call.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from .plugins import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, KINDS

FORMAT = 1
_ENV = ("BANEL_LOAD_PLUGINS", "BANEL_BLOCK_PLUGINS", "BANEL_STRICT_PLUGINS")


def cache_dir() -> Path:
    """Where pretrained priors and other reusable artefacts are cached (BANEL_CACHE)."""
    root = os.environ.get("BANEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "banel")
    return Path(root)


def _sources(top: str) -> list[Path]:
    """The .py files of a top-level module or package, found without importing it."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(p for d in spec.submodule_search_locations for p in Path(d).rglob("*.py"))
    return [Path(spec.origin)] if spec.origin and spec.origin != "built-in" else []


def fingerprint() -> str:
    """A digest of everything the listing depends on: entry points and plugin sources."""
    h = hashlib.sha256(f"{FORMAT}|{sys.version}|{sys.prefix}".encode())
    for var in _ENV:
        h.update(f"|{var}={os.environ.get(var)}".encode())
    tops = {m.split(".")[0] for m in DEFAULT_PLUGINS}
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP),
                     key=lambda e: (e.name, e.value)):
        dist = getattr(ep, "dist", None)
        h.update(f"|{ep.name}={ep.value}@{dist.version if dist else None}".encode())
        tops.add(ep.value.split(":")[0].split(".")[0])
    for top in sorted(tops):
        for path in _sources(top):
            try:
                st = path.stat()
            except OSError:
                continue
            h.update(f"|{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def rows_from_host(host) -> dict[str, Any]:
    """Every component of every kind as JSON-ready rows, plus the plugins and their failures."""
    registry = host.registry
    kinds = {}
    for kind in KINDS:
        kinds[kind] = [
            {"name": c.name, "plugin": c.plugin, "default": bool(c.meta.get("default")),
             "reference": bool(getattr(c.obj, "reference", False)),
             "description": getattr(c.obj, "description", "") or "",
             "options": sorted(getattr(getattr(c.obj, "Options", None), "model_fields", {}))}
            for c in registry.components(kind)]
    return {"kinds": kinds, "plugins": host.plugin_list(),
            "failures": [f.as_dict() for f in host.failures]}


def _path() -> Path:
    return cache_dir() / "listing.json"


def listing() -> dict[str, Any]:
    """The rows of every kind: from the cache when its fingerprint matches, else by loading."""
    key = fingerprint()
    path = _path()
    try:
        cached = json.loads(path.read_text())
        if cached.get("fingerprint") == key:
            for f in cached["failures"]:
                warnings.warn(f"banel: plugin {f['name']!r} skipped ({f['stage']}): "
                              f"{f['error']}", stacklevel=2)
            return cached
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from .plugins import get_host

    data = {"fingerprint": key, **rows_from_host(get_host())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:  # a read-only cache is not an error: the listing is only slower
        pass
    return data
