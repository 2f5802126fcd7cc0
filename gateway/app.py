"""The application factory. Everything is made here and reached through AppKeys; importing creates nothing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Iterable

import structlog
from aiohttp import web

from gateway.events.runtime import feed_tasks
from gateway.http import admin, events, limits, openapi, ops, portal
from gateway.http.appkeys import gateway_key, metrics_key
from gateway.http.middleware import edge_middleware
from gateway.http.scim import not_found, setup_routes
from gateway.http.selftest import setup_routes as setup_selftest_routes
from gateway.identity import activity
from gateway.metrics import Metrics
from gateway.plugin_manager import PluginHost
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store, open_store

log = structlog.get_logger("scim_gateway.app")

__all__ = ["Gateway", "create_app"]


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
    app = web.Application(middlewares=[edge_middleware, limits.request_checks], client_max_size=settings.max_body_bytes,
                          handler_args=limits.handler_args(settings))
    app[gateway_key] = gw
    app[metrics_key] = _metrics(settings, gw.store)
    limits.setup(app, settings)
    openapi.setup_routes(app)  # before the SCIM routes, whose /scim/v2/{tenant_id} would match its path
    setup_routes(app)
    ops.setup_routes(app)
    admin.setup_routes(app)
    events.setup_routes(app)
    portal.setup_routes(app)
    setup_selftest_routes(app)
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

        async def outbox_backlog() -> int:  # change-feed events kept in the outbox (issue 10)
            async with store.read() as r:
                return int((await r.feed_stats())["events"])

        async def webhook_backlog() -> int:  # webhook deliveries waiting to be (re)tried
            async with store.read() as r:
                return int((await r.feed_stats())["deliveries_pending"])

        m.add_backlog("outbox", outbox_backlog)
        m.add_backlog("webhook_deliveries", webhook_backlog)
    return m


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    gw = app[gateway_key]
    await gw.store.open()
    try:
        gw.check_plugin_settings()
        await gw.plugins.startup(gw)
        task = asyncio.create_task(_housekeeping(gw))
        retention = asyncio.create_task(activity.retention_loop(gw.store, gw.settings))
        feed = feed_tasks(gw.store, gw.settings)
        try:
            yield
        finally:
            for t in (task, retention, *feed):
                t.cancel()
            for t in (task, retention, *feed):
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            try:
                await gw.flush_key_usage()
            except Exception:
                log.exception("key_usage_flush_failed")
            await gw.activity.close()
            log.info("background_tasks_stopped", tasks=["housekeeping", "activity_retention"])
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
