"""Build the plugin manager: core defaults, then entry points, then explicit plugins.

Nothing here is global: every app gets its own manager, so tests can run any set of plugins.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.metadata import entry_points
from types import SimpleNamespace
from typing import Any, Iterable, Mapping, Sequence

import pluggy
import structlog

from gateway import defaults, hookspecs

ENTRY_POINT_GROUP = "scim_gateway"
CORE = "core"
PER_REQUEST_HOOKS = (
    "scim_normalize_query",
    "scim_normalize_resource",
    "scim_normalize_patch",
    "scim_correlation_filter",
    "scim_shape_response",
    "scim_resource_changed",
)
log = structlog.get_logger("scim_gateway.plugins")


# SCIM_GATEWAY_TRACE_HOOKS=1: every hook call as debug events (seen with SCIM_GATEWAY_LOG_LEVEL=DEBUG).
def _trace_before(name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
    log.debug("hook_call", hook=name, plugins=[i.plugin_name for i in impls])


def _trace_after(outcome: pluggy.Result[Any], name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
    failed = outcome.exception is not None
    log.debug("hook_done", hook=name, plugins=[i.plugin_name for i in impls], failed=failed,
              **({"error": type(outcome.exception).__name__} if failed else {}))


class DuplicatePluginError(RuntimeError):
    pass


def _plugin_name(plugin: Any) -> tuple[str, Any]:
    if isinstance(plugin, tuple):
        return plugin[0], plugin[1]
    name = getattr(plugin, "scim_plugin_name", None) or getattr(plugin, "__name__", None)
    if not name:
        raise ValueError(f"plugin {plugin!r} needs a name: pass (name, plugin) or set scim_plugin_name")
    return str(name).rsplit(".", 1)[-1], plugin


class PluginHost:
    """The gateway's pluggy manager plus per-client hook subsets."""

    def __init__(self, plugins: Iterable[Any] = (), *, load_entrypoints: bool = True) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(defaults, name=CORE)
        if load_entrypoints:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                self._register(ep.name, ep.load(), origin=f"entry point {ep.value}")
        for plugin in plugins:
            name, obj = _plugin_name(plugin)
            self._register(name, obj, origin="explicit")
        self.pm.check_pending()
        if os.environ.get("SCIM_GATEWAY_TRACE_HOOKS"):
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)
        self._subset = lru_cache(maxsize=None)(self._build_subset)

    def _register(self, name: str, plugin: Any, *, origin: str) -> None:
        if self.pm.has_plugin(name) or self.pm.is_registered(plugin):
            raise DuplicatePluginError(f"plugin {name!r} ({origin}) is already registered")
        self.pm.register(plugin, name=name)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def idp_plugins(self) -> list[str]:
        """Plugins that can be a tenant's IdP: those implementing ``scim_identify_client``."""
        return [i.plugin_name for i in self.pm.hook.scim_identify_client.get_hookimpls()]

    def names(self) -> list[str]:
        return [n for n, _ in self.pm.list_name_plugin()]

    def hooks_for(self, client: str) -> Any:
        """Per-request hooks that run on ``client`` and on cross-cutting plugins only."""
        return self._subset(client)

    def _build_subset(self, client: str) -> Any:
        others = [self.pm.get_plugin(n) for n in self.idp_plugins() if n != client]
        return SimpleNamespace(
            **{h: self.pm.subset_hook_caller(h, remove_plugins=[p for p in others if p is not None]) for h in PER_REQUEST_HOOKS}
        )


def installed_idps() -> list[str]:
    """Names of the IdP plugins installed through entry points (what a tenant's ``idp`` may name)."""
    return PluginHost().idp_plugins()
