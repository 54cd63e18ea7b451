"""Plugin loading, one entry point at a time, and the registry of named components."""

from __future__ import annotations

import importlib
import os
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import BanelError, UnknownComponentError

ENTRY_POINT_GROUP = "banel"
#: Plugins of the core itself, registered like any other (the way pytest does it).
DEFAULT_PLUGINS = ("banel_framework.builtin",)
KINDS = {
    "task": "register_tasks",
    "generator": "register_generators",
    "failure_model": "register_failure_models",
    "posterior_scorer": "register_posterior_scorers",
    "oracle": "register_oracles",
    "method": "register_methods",
    "executor": "register_executors",
    "tracker": "register_trackers",
}


class PluginError(BanelError):
    """A plugin failed to load or register and strict mode is on."""


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised."""

    plugin: str
    distribution: str | None
    stage: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.plugin, "distribution": self.distribution, "stage": self.stage,
                "error": self.error}


@dataclass
class Component:
    """One named thing a plugin registered."""

    kind: str
    name: str
    obj: Any
    plugin: str
    meta: dict[str, Any] = field(default_factory=dict)


def strict_mode() -> bool:
    """True when BANEL_STRICT_PLUGINS asks for plugin failures to be fatal."""
    return os.environ.get("BANEL_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {x.strip() for x in raw.split(",") if x.strip()}


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


class PluginHost:
    """The plugin manager plus what loading it found: plugins, failures, components."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("banel")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.info: dict[str, dict[str, Any]] = {}
        self._registry: Registry | None = None

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> PluginHost:
        """Register the core's plugins, then every entry point of the `banel` group."""
        for modname in DEFAULT_PLUGINS:
            self._add(modname, lambda m=modname: importlib.import_module(m), None, None)
        only = _env_list("BANEL_LOAD_PLUGINS")
        blocked = _env_list("BANEL_BLOCK_PLUGINS") or set()
        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(ep.name)
            if (only is not None and ep.name not in only) or ep.name in blocked:
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            self._add(ep.name, ep.load, dist_name, version)
        return self

    def _add(self, name: str, loader: Callable[[], Any], dist: str | None,
             version: str | None) -> None:
        self.info[name] = {"name": name, "distribution": dist, "version": version, "hooks": [],
                           "status": "ok", "error": None}
        try:
            module = loader()
        except Exception as exc:  # noqa: BLE001 - any import error is reported, not raised
            self._fail(name, dist, "import", exc)
            return
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()  # catches misspelled hook names in this plugin
        except Exception as exc:  # noqa: BLE001
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            self._fail(name, dist, "register", exc)
            return
        self.info[name]["hooks"] = sorted(h.name for h in self.pm.get_hookcallers(module) or [])

    def _fail(self, name: str, dist: str | None, stage: str, exc: BaseException) -> None:
        failure = PluginFailure(name, dist, stage, _short_error(exc))
        self.failures.append(failure)
        self.info[name].update(status="failed", error=failure.error)
        if strict_mode():
            raise PluginError(f"plugin {name!r} failed at {stage}: {failure.error}") from exc
        warnings.warn(f"banel: plugin {name!r} skipped ({stage}): {failure.error}", stacklevel=3)

    # -- components ------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """Every registered component, collected once from each plugin separately."""
        if self._registry is None:
            self._registry = Registry()
            for kind, hookname in KINDS.items():
                caller = getattr(self.pm.hook, hookname)
                for impl in caller.get_hookimpls():
                    def register(name: str, obj: Any, _p=impl.plugin_name, _k=kind, **meta: Any):
                        self._registry.add(Component(_k, name, obj, _p, meta))
                    try:
                        impl.function(register)
                    except Exception as exc:  # noqa: BLE001
                        dist = self.info.get(impl.plugin_name, {}).get("distribution")
                        self.info.setdefault(impl.plugin_name, {"name": impl.plugin_name})
                        self._fail(impl.plugin_name, dist, hookname, exc)
        return self._registry

    def notify(self, hookname: str, **kwargs: Any) -> None:
        """Call an event hook on every observer; one that raises is reported and skipped."""
        caller = getattr(self.pm.hook, hookname)
        for impl in caller.get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:
                if strict_mode():
                    raise
                warnings.warn(
                    f"banel: observer {impl.plugin_name!r} failed in {hookname}: "
                    f"{_short_error(exc)}\n{traceback.format_exc(limit=3)}", stacklevel=2)

    def plugin_list(self) -> list[dict[str, Any]]:
        """JSON-ready list of plugins: name, distribution, version, hooks, status, error."""
        return [dict(v) for _, v in sorted(self.info.items())]


class Registry:
    """Components by kind and name; a name registered twice must be qualified as plugin:name."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, list[Component]]] = {k: {} for k in KINDS}

    def add(self, comp: Component) -> None:
        self._items[comp.kind].setdefault(comp.name, []).append(comp)

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self._items[kind])

    def components(self, kind: str) -> list[Component]:
        """Every component of one kind, sorted by name then plugin."""
        return sorted((c for cs in self._items[kind].values() for c in cs),
                      key=lambda c: (c.name, c.plugin))

    def get(self, kind: str, name: str) -> Component:
        """The component called `name` (or `plugin:name`), with a helpful error otherwise."""
        plugin, _, short = name.rpartition(":")
        found = self._items[kind].get(short, [])
        if plugin:
            found = [c for c in found if c.plugin == plugin]
        label = kind.replace("_", " ")
        if not found:
            known = ", ".join(self.names(kind)) or "(none)"
            raise UnknownComponentError(f"unknown {label} {name!r}; known: {known}")
        if len(found) > 1:
            options = ", ".join(f"{c.plugin}:{c.name}" for c in found)
            raise UnknownComponentError(f"{label} {name!r} is registered by several plugins; "
                                        f"choose one of: {options}")
        return found[0]

    def default(self, kind: str) -> str:
        """The one component of `kind` registered with default=True."""
        defaults = [c for c in self.components(kind) if c.meta.get("default")]
        flag = "--" + kind
        if len(defaults) == 1:
            return defaults[0].name
        if not defaults:
            raise UnknownComponentError(
                f"no default {kind} is registered; pass {flag} (known: "
                f"{', '.join(self.names(kind)) or 'none'})")
        names = ", ".join(f"{c.plugin}:{c.name}" for c in defaults)
        raise UnknownComponentError(f"several default {kind}s ({names}); pass {flag}")

    def default_task(self) -> str:
        """The one task registered with default=True."""
        return self.default("task")


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _host
    if _host is None:
        _host = PluginHost().load()
    return _host


def reset() -> None:
    """Forget loaded plugins, so that the next get_host() loads afresh (for tests)."""
    global _host
    _host = None
