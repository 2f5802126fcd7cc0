"""One middleware: request id, structlog context, SCIM errors rendered, one log line per request."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.core.errors import ScimError
from gateway.http.appkeys import client_key, gateway_key, metrics_key, outcome_key, request_id_key, scim_request_key, tenant_key
from gateway.http.metrics import observe
from gateway.http.ops import QUIET_PATHS
from gateway.http.scim import scim_response
from gateway.identity import activity
from gateway.pipeline import ShapedError
from gateway.store.base import TenantRow

log = structlog.get_logger("scim_gateway.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(status: int, body: dict[str, object], request: web.Request) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if status == 401 else None
    if request.path.startswith("/api/"):
        return web.json_response(
            {"error": body.get("scimType") or _admin_code(status), "detail": body.get("detail")},
            status=status,
            headers=headers,
        )
    return scim_response(status, body, headers)


def _admin_code(status: int) -> str:
    return {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            408: "request_timeout", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
            429: "too_many_requests"}.get(status, "error")


async def record_scim_request(request: web.Request, tenant: TenantRow, status: int, error: ScimError | None) -> None:
    sreq = request.get(scim_request_key)
    outcome = request.get(outcome_key)
    try:
        gw = request.app[gateway_key]
        await activity.record_request(
            gw.store,
            tenant,
            method=request.method,
            path=request.path,
            status=status,
            client=request.get(client_key),
            request_id=request[request_id_key],
            request_body=sreq.body if sreq is not None else None,
            response_body=outcome.body if outcome is not None else (error.to_body() if error else None),
            error=error,
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items() if k.lower() in activity.RECORDED_HEADERS},
            max_payload=gw.settings.activity_max_payload_bytes,
            secret_names=(await gw.service.types_for(tenant)).secret_names,
        )
    except Exception:  # the activity log must never turn a served request into a failure
        log.exception("activity_write_failed", tenant=tenant.id)


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in QUIET_PATHS:  # probes and scrapes: answered by themselves, kept out of the request log
        return await handler(request)
    rid = request.headers.get("X-Request-Id", "")
    if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
        rid = f"{random.getrandbits(64):016x}"  # a correlation id, not a secret: no need for the OS's entropy
    request[request_id_key] = rid
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    started = time.perf_counter()
    error: ScimError | None = None
    try:
        try:
            response = await handler(request)
        except ShapedError as shaped:
            error = shaped.error
            request[client_key] = shaped.client
            response = _error_response(shaped.error.status, shaped.body, request)
        except ScimError as exc:
            error = exc
            response = _error_response(exc.status, exc.to_body(), request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            error = ScimError(exc.reason or "request failed", status=exc.status)
            response = _error_response(exc.status, error.to_body(), request)
        except asyncio.CancelledError:
            # the client went away and aiohttp cancelled the handler: a client error (nginx's 499), not a 500
            error = ScimError("the client closed the connection", status=499)
            raise
        except Exception:
            log.exception("unhandled_error", path=activity.redact(request.path))
            error = ScimError(f"internal server error (request id {rid})", status=500)
            response = _error_response(500, error.to_body(), request)
        if error is not None:
            response.headers.update(getattr(error, "headers", None) or {})  # e.g. Retry-After on a 429
        response.headers["X-Request-Id"] = rid
        return response
    finally:
        tenant = request.get(tenant_key)
        status = error.status if error else (response.status if "response" in locals() else 500)
        if tenant is not None and request.path.startswith("/scim/"):
            await record_scim_request(request, tenant, status, error)
        duration = time.perf_counter() - started
        metrics = request.app[metrics_key]
        if metrics.enabled:
            observe(metrics, request, status, error, tenant.id if tenant else None, duration)
        log.info(
            "request",
            method=request.method,
            path=activity.redact(request.path),  # a key pasted into a URL never reaches the log
            status=status,
            tenant=tenant.id if tenant else request.match_info.get("tenant_id"),
            client=request.get(client_key),
            duration_ms=round(duration * 1000, 2),
            **({"scim_type": error.scim_type} if error and error.scim_type else {}),
        )
