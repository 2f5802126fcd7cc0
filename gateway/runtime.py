"""What a running gateway holds: settings, store, plugins and the SCIM service. No aiohttp here.

Everything that needs the gateway (the pipeline, the HTTP layer, plugins' ``scim_startup``) imports
this module; it imports none of them, so the layers form no cycle.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from gateway.clock import format_time
from gateway.core.service import ScimService
from gateway.events.outbox import outbox_listener
from gateway.identity import activity, roles
from gateway.plugin_manager import PluginHost
from gateway.settings import Settings
from gateway.store import Store


class Gateway:
    """What a running gateway holds: settings, store, plugins and the SCIM service."""

    def __init__(self, settings: Settings, store: Store, plugins: PluginHost) -> None:
        self.settings = settings
        self.store = store
        self.plugins = plugins
        self.service = ScimService(
            store,
            base_url=settings.scim_url,
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
            max_filter_depth=settings.max_filter_depth,
            max_elements=settings.max_elements_per_request,
        )
        # Roles first, so the provisioning event describes the change with its roles already applied.
        self.service.listeners.append(roles.role_listener)
        self.service.listeners.append(activity.provisioning_listener)
        self.activity = activity.ActivityWriter(store)
        # The change feed: events in the change's own transaction (off: the store drops them, no listener).
        store.emit_events = settings.events_enabled
        if settings.events_enabled:
            self.service.listeners.append(outbox_listener)
        self.bulk_supported = _bulk_available()
        self._touched: dict[str, float] = {}

    def plugin_settings(self, name: str) -> dict[str, str]:
        """The settings for plugin ``name`` (``SCIM_GATEWAY_PLUGIN_<NAME>__<KEY>``); validate them in ``scim_startup``."""
        return self.settings.plugin_settings(name)

    def check_plugin_settings(self) -> None:
        """Settings addressed to a plugin that is not registered are a misspelling: refuse to start."""
        known = {n.lower().replace("-", "_") for n in self.plugins.names()}
        unknown = sorted(set(self.settings.plugin_config) - known)
        if unknown:
            raise ValueError(f"settings given for unknown plugin(s) {', '.join(unknown)}; installed: "
                             f"{', '.join(sorted(known - {'core'}))}")

    def touch_key(self, key_id: str) -> None:
        """Remember a key's last use; flushed in batches so a read never waits on a write."""
        self._touched[key_id] = time.time()

    async def flush_key_usage(self) -> None:
        if not self._touched:
            return
        touched, self._touched = self._touched, {}
        async with self.store.write() as tx:
            for key_id, when in sorted(touched.items()):  # one order in every process: no lock-order deadlock
                await tx.touch_api_key(key_id, format_time(datetime.fromtimestamp(when, timezone.utc)))


def _bulk_available() -> bool:
    try:
        import gateway.core.bulk  # noqa: F401
    except ImportError:
        return False
    return True
