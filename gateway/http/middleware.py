"""One middleware: request id, structlog context, SCIM errors rendered, one log line per request."""

from __future__ import annotations

import asyncio
import time
from random import getrandbits
from typing import Any, Awaitable, Callable

import orjson

import structlog
from aiohttp import web

from gateway.core.errors import ScimError
from gateway.http.appkeys import (client_key, gateway_key, metrics_key, outcome_key, raw_body_key, request_id_key,
                                  scim_request_key, tenant_key)
from gateway.http.metrics import observe
from gateway.http.ops import QUIET_PATHS
from gateway.http.scim import scim_response
from gateway.identity import activity
from gateway.logging import RequestLine
from gateway.pipeline import ShapedError
from gateway.store.base import TenantRow

log = structlog.get_logger("scim_gateway.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_RAW_TEXT = 65536


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


def _as_received(raw: bytes | None) -> Any:
    """The body exactly as the client sent it: its JSON, or its text when it was not JSON."""
    if not raw or not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:_MAX_RAW_TEXT].decode("utf-8", "replace")


def record_scim_request(request: web.Request, tenant: TenantRow, status: int, error: ScimError | None) -> None:
    """Hand the request's activity event (if any) to the writer; building and writing it happen after the response."""
    if error is None and not tenant.log_successful_events:
        return
    sreq = request.get(scim_request_key)
    outcome = request.get(outcome_key)
    raw = request.get(raw_body_key)
    method, path, client, rid, query = (request.method, request.path, request.get(client_key),
                                        request[request_id_key], dict(request.query))
    gw = request.app[gateway_key]

    async def build() -> tuple[str, dict[str, Any]] | None:
        return activity.request_event(
            tenant,
            method=method,
            path=path,
            status=status,
            client=client,
            request_id=rid,
            received=_as_received(raw),
            normalized=sreq.body if sreq is not None else None,
            received_query=query,
            normalized_query=sreq.query if sreq is not None else None,
            response_body=outcome.body if outcome is not None else (error.to_body() if error else None),
            error=error,
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items() if k.lower() in activity.RECORDED_HEADERS},
            max_payload=gw.settings.activity_max_payload_bytes,
            secret_names=(await gw.service.types_for(tenant)).secret_names,
        )

    gw.activity.submit(tenant.id, build)


_LINE = RequestLine("scim_gateway.http")


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path in QUIET_PATHS:  # probes and scrapes: answered by themselves, kept out of the request log
        return await handler(request)
    rid = request.headers.get("X-Request-Id")
    if rid is None or not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
        rid = f"{getrandbits(64):016x}"  # a correlation id, not a secret: no need for the OS's entropy
    request[request_id_key] = rid
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    started = time.perf_counter()
    error: ScimError | None = None
    response: web.StreamResponse | None = None
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
            detail = f"{request.method} is not allowed on {activity.redact(path)[:200]}" if exc.status == 405 else exc.reason
            error = ScimError(detail or "request failed", status=exc.status)
            response = _error_response(exc.status, error.to_body(), request)
            if "Allow" in exc.headers:  # RFC 9110 §15.5.6: a 405 names the methods that are allowed
                response.headers["Allow"] = exc.headers["Allow"]
        except asyncio.CancelledError:
            # the client went away and aiohttp cancelled the handler: a client error (nginx's 499), not a 500
            error = ScimError("the client closed the connection", status=499)
            raise
        except Exception:
            log.exception("unhandled_error", path=activity.redact(path))
            error = ScimError(f"internal server error (request id {rid})", status=500)
            response = _error_response(500, error.to_body(), request)
        if error is not None:
            response.headers.update(getattr(error, "headers", None) or {})  # e.g. Retry-After on a 429
        response.headers["X-Request-Id"] = rid
        return response
    finally:
        duration = time.perf_counter() - started
        tenant = request.get(tenant_key)
        status = error.status if error else (response.status if response is not None else 500)
        if tenant is not None and path.startswith("/scim/"):
            record_scim_request(request, tenant, status, error)
        metrics = request.app[metrics_key]
        if metrics.enabled:
            observe(metrics, request, status, error, tenant.id if tenant else None, duration)
        if _LINE.enabled:
            fields = {
                "method": request.method,
                "path": activity.redact(path),  # a key pasted into a URL never reaches the log
                "status": status,
                "tenant": tenant.id if tenant else request.match_info.get("tenant_id"),
                "client": request.get(client_key),
                "duration_ms": round(duration * 1000, 2),
            }
            if error and error.scim_type:
                fields["scim_type"] = error.scim_type
            _LINE.emit("request", fields)
