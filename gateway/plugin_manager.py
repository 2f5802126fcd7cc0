"""Build the plugin manager: core defaults, then entry points, then explicit plugins.

Nothing here is global: every app gets its own manager, so tests can run any set of plugins.

A plugin has one name: its entry-point name in the ``scim_gateway`` group (``okta = "scim_gateway_okta"``
names the plugin ``okta``), which is also the tenant ``idp`` value and the ``client`` log field. A
plugin passed to ``create_app(plugins=...)`` is given as ``(name, plugin)``; a module or object
that an installed entry point loads may be passed alone and keeps its entry-point name.

Identification order (``scim_identify_client`` is firstresult, so the first answer wins): explicit
plugins in the order given, then installed third-party plugins by entry-point name, then the
built-in plugins by name; ``tryfirst``/``trylast`` move an implementation to the front or the back
(the built-in ``generic`` is ``trylast``, so it answers last). The same order holds for every hook.
"""

from __future__ import annotations

import inspect
import os
import re
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from types import SimpleNamespace
from typing import Any, Iterable, Mapping, Sequence

import pluggy
import structlog

from gateway import defaults, hookspecs

ENTRY_POINT_GROUP = "scim_gateway"
BUILTIN_DISTRIBUTION = "scim-gateway"
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


def _is_builtin(ep: EntryPoint) -> bool:
    dist = ep.dist
    return dist is not None and re.sub(r"[-_.]+", "-", dist.name).lower() == BUILTIN_DISTRIBUTION


def plugin_entry_points() -> list[EntryPoint]:
    """The installed plugins' entry points, in the order they are asked (third-party, then built-in; by name)."""
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}  # one per name, as importlib dedups dists
    return sorted(eps.values(), key=lambda ep: (_is_builtin(ep), ep.name))


def entry_point_name(plugin: Any) -> str | None:
    """The entry-point name of an installed plugin object (module or attribute), or None."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value == getattr(plugin, "__name__", None) or (ep.attr and ep.load() is plugin):
            return ep.name
    return None


def _named(plugin: Any) -> tuple[str, Any]:
    if isinstance(plugin, tuple):
        name, obj = plugin
        return str(name), obj
    name = entry_point_name(plugin)
    if name is None:
        raise ValueError(
            f"plugin {plugin!r} has no scim_gateway entry point here: pass it as (name, plugin); "
            "a plugin's name is its entry-point name"
        )
    return name, plugin


async def await_me_maybe(value: Any) -> Any:
    """``await`` a hook result when it is awaitable (a coroutine implementation), else return it."""
    if inspect.isawaitable(value):
        return await value
    return value


class PluginHost:
    """The gateway's pluggy manager plus per-client hook subsets."""

    def __init__(self, plugins: Iterable[Any] = (), *, load_entrypoints: bool = True) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(defaults, name=CORE)
        # pluggy calls the last registered first: register in reverse of the order plugins are asked.
        if load_entrypoints:
            for ep in reversed(plugin_entry_points()):
                self._register(ep.name, ep.load(), origin=f"entry point {ep.value}")
        for name, obj in reversed([_named(p) for p in plugins]):
            if self.pm.get_plugin(name) is obj:
                continue  # an installed plugin passed explicitly too: the same plugin, registered once
            self._register(name, obj, origin="explicit")
        self.pm.check_pending()
        if os.environ.get("SCIM_GATEWAY_TRACE_HOOKS"):
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)
        self._tracing = bool(os.environ.get("SCIM_GATEWAY_TRACE_HOOKS"))
        self._subset = lru_cache(maxsize=None)(self._build_subset)
        self._single = lru_cache(maxsize=None)(self._build_single)
        for name in self.idp_plugins():  # each client's hook callers, built once at start-up
            self._subset(name)

    def _register(self, name: str, plugin: Any, *, origin: str) -> None:
        if self.pm.has_plugin(name) or self.pm.is_registered(plugin):
            raise DuplicatePluginError(f"plugin {name!r} ({origin}) is already registered")
        self.pm.register(plugin, name=name)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def idp_plugins(self) -> list[str]:
        """Plugins that can be a tenant's IdP (those implementing ``scim_identify_client``), in the order asked."""
        return [i.plugin_name for i in reversed(self.pm.hook.scim_identify_client.get_hookimpls())]

    def names(self) -> list[str]:
        return [n for n, _ in self.pm.list_name_plugin()]

    def hooks_for(self, client: str) -> Any:
        """Per-request hooks that run on ``client`` and on cross-cutting plugins only."""
        return self._subset(client)

    def implements(self, hooks: Any, hook: str) -> bool:
        """Whether some plugin implements ``hook`` in ``hooks`` (a :meth:`hooks_for` namespace)."""
        return not isinstance(getattr(hooks, hook), _Unimplemented)

    def _build_subset(self, client: str) -> Any:
        others = [p for p in (self.pm.get_plugin(n) for n in self.idp_plugins() if n != client) if p is not None]
        callers: dict[str, Any] = {}
        for h in PER_REQUEST_HOOKS:
            caller: Any = self.pm.subset_hook_caller(h, remove_plugins=others)
            if not caller.get_hookimpls() and not self._tracing:
                # nobody implements it for this client: skip the pluggy round on every request
                caller = _Unimplemented(bool(caller.spec and caller.spec.opts.get("firstresult")))
            callers[h] = caller
        return SimpleNamespace(**callers)

    async def notify(self, caller: Any, **kwargs: Any) -> None:
        """Call a notification hook through pluggy, one implementation at a time in pluggy's order,
        awaiting coroutine results; an implementation's error is logged and never stops the others."""
        for impl in reversed(caller.get_hookimpls()):
            try:
                for result in self._single(caller.name, impl.plugin_name)(**kwargs):
                    await await_me_maybe(result)
            except Exception:  # notification hooks never fail a committed request
                log.exception("hook_failed", hook=caller.name, plugin=impl.plugin_name)

    def _build_single(self, hook: str, plugin_name: str) -> Any:
        others = [p for n, p in self.pm.list_name_plugin() if n != plugin_name]
        return self.pm.subset_hook_caller(hook, remove_plugins=others)

    async def startup(self, gateway: Any) -> None:
        """``scim_startup`` through pluggy; coroutine results are awaited in order, errors abort start-up."""
        for result in self.pm.hook.scim_startup(gateway=gateway):
            await await_me_maybe(result)


class _Unimplemented:
    """A per-request hook no plugin implements for a client: calling it returns what pluggy would."""

    __slots__ = ("firstresult",)

    def __init__(self, firstresult: bool) -> None:
        self.firstresult = firstresult

    def __call__(self, **kwargs: Any) -> Any:
        return None if self.firstresult else []

    def get_hookimpls(self) -> list[Any]:
        return []


def installed_idps() -> list[str]:
    """Names of the installed IdP plugins (entry points implementing ``scim_identify_client``)."""
    return [ep.name for ep in plugin_entry_points() if hasattr(ep.load(), "scim_identify_client")]
