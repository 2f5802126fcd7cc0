"""SCIM routes: bearer auth per tenant, body parsing, and the hand-off to the pipeline."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from aiohttp import web

from gateway import pipeline
from gateway.core import routes
from gateway.core.errors import (
    ForbiddenError,
    NotFoundError,
    ScimError,
    UnauthorizedError,
)
from gateway.http.appkeys import (client_key, gateway_key, outcome_key, raw_body_key, request_id_key, scim_request_key,
                                  tenant_key)
from gateway.http.limits import guard_key, read_body, read_json
from gateway.identity.activity import redact
from gateway.identity.tenants import authenticate, plugin_tenant
from gateway.store.base import TenantRow
from gateway.types import ScimRequest

SCIM_CONTENT_TYPE = "application/scim+json"
_JSON_TYPES = ("application/scim+json", "application/json", "text/json")
_UNAUTHORIZED = "Authentication failed: send 'Authorization: Bearer <tenant API key>'"


def scim_response(status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> web.Response:
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type=SCIM_CONTENT_TYPE,
        charset="utf-8",
        headers=headers,
    )


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _tenant_for(request: web.Request) -> TenantRow:
    """Authenticate the tenant's API key; every failure is the same 401 so nothing leaks."""
    gw = request.app[gateway_key]
    tenant_id = request.match_info["tenant_id"]
    guard = request.app[guard_key]
    guard.check_address(request)
    token = _bearer(request)
    found = await authenticate(gw.store, tenant_id, token) if token else None
    if found is None:
        guard.auth_failed(request)
        raise UnauthorizedError(_UNAUTHORIZED)
    key, tenant = found
    guard.admit_key(key.id, tenant)
    gw.touch_key(key.id)
    request[tenant_key] = tenant
    if not tenant.scim_enabled:
        raise ForbiddenError(
            "SCIM provisioning is disabled for this tenant: an administrator must turn on "
            "'Enable SCIM provisioning' (scim_enabled) before the IdP can sync"
        )
    return tenant


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    gw = request.app[gateway_key]
    ctype = request.content_type.lower()
    if ctype and ctype not in _JSON_TYPES:
        raise ScimError(f"unsupported Content-Type {ctype[:60]!r}; send application/scim+json", status=415)
    request[raw_body_key] = await read_body(request, gw.settings)  # as received, for the activity log
    body, _ = await read_json(request, gw.settings)  # the same bytes again: aiohttp keeps them
    return body


async def scim_handler(request: web.Request) -> web.StreamResponse:
    gw = request.app[gateway_key]
    tenant = await _tenant_for(request)
    body = await _json_body(request)
    path = "/" + request.match_info.get("tail", "")
    route = routes.match(path)
    sreq = ScimRequest(
        method=request.method,
        path=path,
        resource_type=route.resource_type if route else None,
        resource_id=route.resource_id if route else None,
        query=dict(request.query),
        headers={k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"},
        body=body,
        tenant=plugin_tenant(tenant),
        request_id=request[request_id_key],
    )
    request[scim_request_key] = sreq
    outcome = await pipeline.handle(gw, sreq, tenant)
    request[client_key] = outcome.client
    request[outcome_key] = outcome
    return scim_response(outcome.status, outcome.body, outcome.headers)


async def not_found(request: web.Request) -> web.StreamResponse:
    allowed = await _allowed_methods(request)
    if allowed:  # the path exists, the method does not: 405 with Allow (RFC 9110 §15.5.6)
        return web.json_response({"error": "method_not_allowed", "detail": f"{request.method} is not allowed on "
                                  f"{redact(request.path)[:200]}: use {', '.join(sorted(allowed))}"}, status=405,
                                 headers={"Allow": ", ".join(sorted(allowed))})
    raise NotFoundError(f"no endpoint at {redact(request.path)[:200]}")


async def _allowed_methods(request: web.Request) -> set[str]:
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    return allowed


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def setup_routes(app: web.Application) -> None:
    app.router.add_route("*", "/scim/v2/{tenant_id}", scim_handler)
    app.router.add_route("*", "/scim/v2/{tenant_id}/{tail:.*}", scim_handler)
