"""Prometheus metrics, one :class:`Metrics` per app (``create_app`` makes it; reach it as ``app[metrics_key]``).

Nothing here touches prometheus-client's global default registry: each app has its own
``CollectorRegistry``, so two apps in one process (tests) never share or collide. Under
``serve --workers N`` the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before any import and the
page aggregates every worker's values (prometheus-client's multiprocess mode).

Labels never carry a tenant id or user data unless ``metrics_tenant_label`` is on: route labels
are templates (``/scim/v2/{tenant_id}/Users/{id}``), methods and IdP names come from fixed sets.

Other features count into it:

- ``metrics.count_rate_limited(scope)`` for a refusal by a rate limit (429);
- ``metrics.add_backlog(queue, fn)`` with ``async fn() -> int``: a queue's depth, read at scrape
  time (``create_app`` registers the activity log's stored events, the change feed's outbox and its
  pending webhook deliveries).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Awaitable, Callable, Iterator

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_DB_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SCIM_ENDPOINTS = {
    "users": "Users", "groups": "Groups", "bulk": "Bulk", ".search": ".search", "me": "Me",
    "serviceproviderconfig": "ServiceProviderConfig", "resourcetypes": "ResourceTypes", "schemas": "Schemas",
}
_BACKLOG_TIMEOUT_S = 2.0
log = structlog.get_logger("scim_gateway.metrics")
BacklogSource = Callable[[], Awaitable[int]]


def scim_route(tail: str) -> str:
    """The route template of a SCIM path below the tenant: ``Users/2819c`` -> ``/Users/{id}``."""
    parts = [p for p in tail.split("/") if p]
    if not parts:
        return ""
    out = "/" + _SCIM_ENDPOINTS.get(parts[0].lower(), "{unknown}")
    if len(parts) >= 2:
        out += "/.search" if parts[1].lower() == ".search" else "/{id}"
    if len(parts) > 2:
        out += "/{more}"
    return out


def api_of(path: str) -> str:
    for prefix, name in (("/scim/", "scim"), ("/api/", "admin"), ("/portal", "portal"), ("/metrics", "metrics")):
        if path.startswith(prefix):
            return name
    return "other"


class Metrics:
    """The gateway's metrics. ``enabled`` False (``metrics_enabled`` off) makes every call a no-op."""

    def __init__(self, *, enabled: bool = True, tenant_label: bool = False) -> None:
        self.enabled = enabled
        self.tenant_label = tenant_label
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ("route", "method", "status", "idp", *(("tenant",) if tenant_label else ()))
        self.requests = Counter("scim_gateway_http_requests", "HTTP requests by route template, method, status class "
                                "and IdP plugin", labels, registry=r)
        self.duration = Histogram("scim_gateway_http_request_duration_seconds", "HTTP request latency by route "
                                  "template and method", ("route", "method"), buckets=_LATENCY_BUCKETS, registry=r)
        self.scim_errors = Counter("scim_gateway_scim_errors", "SCIM error responses by scimType ('none' when the "
                                   "RFC defines none) and status", ("scim_type", "status"), registry=r)
        self.auth_failures = Counter("scim_gateway_auth_failures", "Requests refused for a missing or wrong "
                                     "credential (401), by API", ("api",), registry=r)
        self.rate_limited = Counter("scim_gateway_rate_limited", "Requests refused by a rate limit (429), by scope",
                                    ("scope",), registry=r)
        self.db_duration = Histogram("scim_gateway_db_duration_seconds", "Time spent in database reads and write "
                                     "transactions", ("kind",), buckets=_DB_BUCKETS, registry=r)
        if not self.multiprocess:
            ProcessCollector(registry=r)
        self.backlogs: dict[str, BacklogSource] = {}
        self._request_children: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self._db_children: dict[str, Any] = {}

    # --- counting -----------------------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, idp: str | None, tenant: str | None,
                        seconds: float) -> None:
        if method not in _METHODS:
            method = "other"
        key = (route, method, status // 100, idp, tenant if self.tenant_label else None)
        children = self._request_children.get(key)
        if children is None:
            values = [route, method, f"{status // 100}xx", idp or "none"]
            if self.tenant_label:
                values.append(tenant or "none")
            children = (self.requests.labels(*values), self.duration.labels(route, method))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_scim_error(self, scim_type: str | None, status: int) -> None:
        self.scim_errors.labels(scim_type or "none", str(status)).inc()

    def count_auth_failure(self, api: str) -> None:
        self.auth_failures.labels(api).inc()

    def count_rate_limited(self, scope: str) -> None:
        """A request refused by a rate limit; ``scope`` is a fixed name (``key``, ``address``), never a value."""
        if self.enabled:
            self.rate_limited.labels(scope).inc()

    def observe_db(self, kind: str, seconds: float) -> None:
        child = self._db_children.get(kind)
        if child is None:
            child = self._db_children[kind] = self.db_duration.labels(kind)
        child.observe(seconds)

    def add_backlog(self, queue: str, source: BacklogSource) -> None:
        """Report ``await source()`` as ``scim_gateway_backlog{queue=...}`` at every scrape."""
        self.backlogs[queue] = source

    # --- the page -----------------------------------------------------------------------------
    async def render(self) -> bytes:
        """The Prometheus text page: this app's (or, under workers, every worker's) metrics plus backlogs."""
        depths: dict[str, float] = {}
        for queue, source in self.backlogs.items():
            try:
                depths[queue] = float(await asyncio.wait_for(source(), _BACKLOG_TIMEOUT_S))
            except Exception as exc:  # a slow or failing database must not take the metrics page down
                log.warning("metrics_backlog_failed", queue=queue, error=type(exc).__name__)
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = self.registry
        extra = CollectorRegistry()
        extra.register(_Backlogs(depths))
        return generate_latest(registry) + generate_latest(extra)


class _Backlogs:
    def __init__(self, depths: dict[str, float]) -> None:
        self.depths = depths

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("scim_gateway_backlog", "Items waiting in a queue, read at scrape time "
                              "(activity: stored activity events; outbox: change-feed events kept; webhook_deliveries: pending deliveries)", labels=["queue"])
        for queue, depth in sorted(self.depths.items()):
            g.add_metric([queue], depth)
        yield g
