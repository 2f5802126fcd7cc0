"""The application factory. Everything is made here and reached through AppKeys; importing creates nothing."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Iterable

import structlog
from aiohttp import web

from gateway.clock import format_time
from gateway.core.errors import ScimError
from gateway.core.service import ScimService
from gateway.http import ops
from gateway.http.appkeys import client_key, gateway_key, metrics_key, outcome_key, request_id_key, scim_request_key
from gateway.http.middleware import edge_middleware
from gateway.http.scim import not_found, setup_routes
from gateway.identity import activity, roles
from gateway.metrics import Metrics
from gateway.plugin_manager import PluginHost
from gateway.settings import Settings
from gateway.store import Store, open_store
from gateway.store.base import TenantRow

log = structlog.get_logger("scim_gateway.app")


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
        )
        # Roles first, so the provisioning event describes the change with its roles already applied.
        self.service.listeners.append(roles.role_listener)
        self.service.listeners.append(activity.provisioning_listener)
        self.bulk_supported = _bulk_available()
        self._touched: dict[str, float] = {}

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

    async def record_scim_request(self, request: web.Request, tenant: TenantRow, status: int, error: ScimError | None) -> None:
        sreq = request.get(scim_request_key)
        outcome = request.get(outcome_key)
        try:
            await activity.record_request(
                self.store,
                tenant,
                method=request.method,
                path=request.path,
                status=status,
                client=request.get(client_key),
                request_id=request[request_id_key],
                request_body=sreq.body if sreq is not None else None,
                response_body=outcome.body if outcome is not None else (error.to_body() if error else None),
                error=error,
            )
        except Exception:  # the activity log must never turn a served request into a failure
            log.exception("activity_write_failed", tenant=tenant.id)


def _bulk_available() -> bool:
    try:
        import gateway.core.bulk  # noqa: F401
    except ImportError:
        return False
    return True


def create_app(
    settings: Settings | None = None,
    *,
    plugins: Iterable[Any] = (),
    load_entrypoints: bool = True,
    store: Store | None = None,
) -> web.Application:
    settings = settings or Settings.from_env()
    host = PluginHost(plugins, load_entrypoints=load_entrypoints)
    gw = Gateway(settings, store or open_store(settings.database, connect_timeout=settings.database_connect_timeout), host)
    app = web.Application(middlewares=[edge_middleware], client_max_size=settings.max_body_bytes)
    app[gateway_key] = gw
    app[metrics_key] = _metrics(settings, gw.store)
    setup_routes(app)
    ops.setup_routes(app)
    _setup_optional(app)
    app.router.add_route("*", "/{tail:.*}", not_found)
    app.cleanup_ctx.append(_lifecycle)
    return app


def _metrics(settings: Settings, store: Store) -> Metrics:
    m = Metrics(enabled=settings.metrics_enabled, tenant_label=settings.metrics_tenant_label)
    if m.enabled:
        store.on_timing = m.observe_db

        async def activity_backlog() -> int:
            async with store.read() as r:
                return await r.count_activity()

        m.add_backlog("activity", activity_backlog)
    return m


def _setup_optional(app: web.Application) -> None:
    """Admin API and portal, when their modules are present."""
    for module in ("gateway.http.admin", "gateway.http.portal"):
        try:
            mod = __import__(module, fromlist=["setup_routes"])
        except ImportError:
            continue
        mod.setup_routes(app)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    gw = app[gateway_key]
    await gw.store.open()
    try:
        for impl in gw.plugins.hook.scim_startup.get_hookimpls():
            out = impl.function(gateway=gw)
            if inspect.isawaitable(out):
                await out
        task = asyncio.create_task(_housekeeping(gw))
        retention = asyncio.create_task(activity.retention_loop(gw.store, gw.settings))
        try:
            yield
        finally:
            for t in (task, retention):
                t.cancel()
            for t in (task, retention):
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            try:
                await gw.flush_key_usage()
            except Exception:
                log.exception("key_usage_flush_failed")
    finally:
        # always release the database: its worker threads would otherwise keep the process alive
        await gw.store.close()


async def _housekeeping(gw: Gateway) -> None:
    while True:
        await asyncio.sleep(5)
        try:
            await gw.flush_key_usage()
        except Exception:
            log.exception("housekeeping_failed")
