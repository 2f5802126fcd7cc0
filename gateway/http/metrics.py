"""What the edge middleware records per request in :class:`gateway.metrics.Metrics`."""

from __future__ import annotations

from aiohttp import web

from gateway.core.errors import ScimError
from gateway.http.appkeys import client_key
from gateway.metrics import Metrics, api_of, scim_route

_SCIM_PREFIX = "/scim/v2/{tenant_id}"


def route_template(request: web.Request) -> str:
    """The matched route as a template (``/scim/v2/{tenant_id}/Users/{id}``); ``unmatched`` for no route."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    if not canonical or canonical == "/{tail}":
        return "unmatched"
    if canonical.startswith(_SCIM_PREFIX):
        return _SCIM_PREFIX + scim_route(request.match_info.get("tail", ""))
    return canonical


def observe(metrics: Metrics, request: web.Request, status: int, error: ScimError | None, tenant: str | None,
            seconds: float) -> None:
    metrics.observe_request(route_template(request), request.method, status, request.get(client_key), tenant, seconds)
    if status == 401:
        metrics.count_auth_failure(api_of(request.path))
    if error is not None and request.path.startswith("/scim/"):
        metrics.count_scim_error(error.scim_type, status)
