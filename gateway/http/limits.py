"""Hardening at the edge: rate limits, failed-authentication throttle, body reading, server limits.

* :class:`RequestGuard` (one per app, under :data:`guard_key`): a token bucket per API key
  (``rate_limit_per_second`` / ``rate_limit_burst``, overridable per tenant in its settings) and a
  failed-authentication counter per client address (``auth_failure_limit`` per
  ``auth_failure_window_seconds``, then a cool-down of one window). Over either: 429 with
  ``Retry-After``. The client address is the peer, or the ``X-Forwarded-For`` entry left of the
  last trusted proxy when the peer is one of ``trusted_proxies``.
* :func:`read_json`: the body of a JSON endpoint, read under ``body_read_timeout_seconds`` (408
  beyond; a client that disconnects mid-body is a 400, not a 500), refused with 413 before it is
  read whole, decoded from its declared charset (415 for an unknown one), parsed, and checked for
  depth, NUL and lone surrogates (:func:`gateway.core.limits.check_json`).
* :func:`setup`: called by ``create_app``; installs the guard, the path/query check middleware and
  the server limits (request line 414, header field 431, concurrent connections 503, all with SCIM
  error bodies instead of aiohttp's plain text), so ``serve`` and test servers get the same limits.
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import math
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from gateway.core.errors import InvalidSyntaxError, InvalidValueError, PayloadTooLargeError, ScimError
from gateway.core.limits import check_json, check_text
from gateway.identity.management import RATE_BURST as TENANT_BURST
from gateway.identity.management import RATE_PER_SECOND as TENANT_RATE
from gateway.settings import Settings
from gateway.store.base import TenantRow

log = structlog.get_logger("scim_gateway.limits")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UTF8 = ("utf-8", "utf8")
_MAX_TRACKED = 100_000  # keys and addresses remembered at most (oldest forgotten first)


class TooManyRequestsError(ScimError):
    """429 with ``Retry-After`` (RFC 6585 §4); the edge middleware copies :attr:`headers` to the response."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail, status=429)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}


class RequestTimeoutError(ScimError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, status=408)


# -- client address -------------------------------------------------------------------------------
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(text: str) -> list[Network]:
    """``trusted_proxies``: comma-separated addresses or CIDR blocks."""
    out: list[Network] = []
    for part in text.split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return out


def _trusted(addr: str, proxies: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr.strip())
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(request: web.Request, proxies: list[Network]) -> str:
    """The peer address; behind trusted proxies, the first ``X-Forwarded-For`` hop (from the right) that is not one."""
    peer = request.remote or ""
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


# -- rate limits ----------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


class RequestGuard:
    """Per-key token buckets and per-address failure counters of one gateway process."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.proxies = parse_proxies(settings.trusted_proxies)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key id -> (tokens, at)
        self._failures: OrderedDict[str, tuple[float, int, float]] = OrderedDict()  # addr -> (window start, n, blocked until)
        self.rejected = 0  # 429s answered (per-key and per-address), for operators
        self.on_reject: Callable[[str], None] | None = None  # the metrics' count_rate_limited(scope)

    def address(self, request: web.Request) -> str:
        return client_address(request, self.proxies)

    # per API key
    def limits_for(self, tenant: TenantRow | None) -> tuple[float, float]:
        rate, burst = float(self.settings.rate_limit_per_second), float(self.settings.rate_limit_burst)
        if tenant is not None:
            own_rate, own_burst = _number(tenant.settings.get(TENANT_RATE)), _number(tenant.settings.get(TENANT_BURST))
            rate = rate if own_rate is None else own_rate
            burst = own_burst or burst
        return rate, max(burst, 1.0)

    def admit_key(self, key_id: str, tenant: TenantRow | None) -> None:
        """Take one token from the key's bucket, or raise 429 saying when the next one is due."""
        rate, burst = self.limits_for(tenant)
        if rate <= 0:
            return
        now = self.clock()
        tokens, at = self._buckets.get(key_id, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1.0:
            self._buckets[key_id] = (tokens, now)
            self._reject("rate_limited", key_id=key_id)
            raise TooManyRequestsError(
                f"rate limit of {rate:g} requests/s (burst {burst:g}) for this API key exceeded "
                "(setting rate_limit_per_second); retry after the delay in Retry-After",
                (1.0 - tokens) / rate,
            )
        self._buckets[key_id] = (tokens - 1.0, now)
        self._buckets.move_to_end(key_id)
        if len(self._buckets) > _MAX_TRACKED:
            self._buckets.popitem(last=False)

    # per client address, failed authentication only
    def check_address(self, request: web.Request) -> None:
        """429 while the client's address is cooling down after too many failed authentications."""
        if self.settings.auth_failure_limit <= 0:
            return
        entry = self._failures.get(self.address(request))
        if entry is not None and entry[2] > self.clock():
            self._reject("auth_throttled")
            raise TooManyRequestsError(
                "too many failed authentications from this address (setting auth_failure_limit); "
                "retry after the delay in Retry-After",
                entry[2] - self.clock(),
            )

    def auth_failed(self, request: web.Request) -> None:
        limit, window = self.settings.auth_failure_limit, self.settings.auth_failure_window_seconds
        if limit <= 0:
            return
        addr, now = self.address(request), self.clock()
        start, n, blocked = self._failures.get(addr, (now, 0, 0.0))
        if now - start > window:
            start, n = now, 0
        n += 1
        if n >= limit:
            blocked = now + window
        self._failures[addr] = (start, n, blocked)
        self._failures.move_to_end(addr)
        if len(self._failures) > _MAX_TRACKED:
            self._failures.popitem(last=False)

    def _reject(self, event: str, **kw: Any) -> None:
        self.rejected += 1
        if self.on_reject is not None:
            self.on_reject(event)  # scim_gateway_rate_limited_total{scope="rate_limited"|"auth_throttled"}
        log.info(event, **kw)


guard_key = web.AppKey("guard_key", RequestGuard)


# -- bodies ---------------------------------------------------------------------------------------
async def read_body(request: web.Request, settings: Settings) -> bytes:
    """The whole body, or 413 (declared or streamed past ``max_body_bytes``), 408 (too slow), 400 (cut off)."""
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes (setting max_body_bytes)")
    try:
        async with asyncio.timeout(settings.body_read_timeout_seconds):
            return await request.read()  # aiohttp stops at client_max_size (= max_body_bytes) and raises 413
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes (setting max_body_bytes)") from None
    except TimeoutError:
        raise RequestTimeoutError(
            f"request body not received within {settings.body_read_timeout_seconds:g} s "
            "(setting body_read_timeout_seconds)"
        ) from None
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        raise InvalidSyntaxError("the client closed the connection before sending the whole body") from None


def _decode(raw: bytes, charset: str | None) -> bytes | str:
    if not charset or charset.lower() in _UTF8:
        return raw
    try:
        codecs.lookup(charset)
    except LookupError:
        raise ScimError(f"unsupported charset {charset[:40]!r}; send UTF-8", status=415) from None
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, ValueError):
        raise InvalidSyntaxError(f"request body is not valid {charset[:40]}") from None


async def read_json(request: web.Request, settings: Settings) -> tuple[Any, bytes]:
    """(parsed body or None when empty, the body as UTF-8 JSON bytes) for any JSON endpoint."""
    raw = await read_body(request, settings)
    if not raw.strip():
        return None, b""
    text = _decode(raw, request.charset)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidSyntaxError(f"request body is not valid JSON: {str(exc)[:200]}") from None
    # Parsed from UTF-8 bytes, a body can hold a NUL only through the \u0000 escape (orjson refuses lone
    # surrogates and raw control characters): without one, only the depth needs a walk.
    check_json(value, max_depth=settings.max_json_depth,
               strings=isinstance(text, str) or b"\\u0000" in text)
    if isinstance(text, str):
        raw = orjson.dumps(value)
    return value, raw


# -- path and query -------------------------------------------------------------------------------
_PORTAL_LOGIN = "/portal/login"


def _credentialed(request: web.Request) -> bool:
    """Requests the failed-authentication throttle watches here (SCIM keys are watched in ``scim.py``)."""
    return request.path.startswith("/api/") or (request.method == "POST" and request.path == _PORTAL_LOGIN)


@web.middleware
async def request_checks(request: web.Request, handler: Handler) -> web.StreamResponse:
    """NUL and lone surrogates in the path or query are the same 400 on every backend (and every endpoint);
    the admin API and the portal sign-in are throttled per address after failed authentications."""
    check_text(request.path, "the request path")
    for k, v in request.query.items():
        check_text(k, "a query parameter name")
        check_text(v, f"query parameter {k[:40]!r}")
    if not _credentialed(request):
        return await handler(request)
    guard = request.app[guard_key]
    if request.path.startswith("/api/"):
        guard.check_address(request)  # the portal's own limiter hook answers its 429 page
    try:
        response = await handler(request)
    except ScimError as exc:
        if exc.status == 401:
            guard.auth_failed(request)
        raise
    if response.status == 401:
        guard.auth_failed(request)
    return response


# -- server limits --------------------------------------------------------------------------------
def _error_bytes(status: int, detail: str) -> bytes:
    return orjson.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail})


class _GatewayRequestHandler(RequestHandler):
    """aiohttp's connection handler with SCIM error bodies for protocol errors and a connection cap."""

    gateway_settings: Settings

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        cap = self.gateway_settings.max_connections
        if cap and self._manager is not None and len(self._manager._connections) > cap:
            body = _error_bytes(503, f"the server has {cap} open connections (setting max_connections); retry shortly")
            head = (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/scim+json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            )
            assert isinstance(transport, asyncio.Transport)
            transport.write(head.encode() + body)
            log.info("connection_refused", reason="max_connections", limit=cap)
            self.force_close()

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        s = self.gateway_settings
        if isinstance(exc, LineTooLong) and len(exc.args) > 1:
            if exc.args[1] == s.max_request_line_bytes:
                status, detail = 414, f"request line longer than {s.max_request_line_bytes} bytes (setting max_request_line_bytes)"
            else:
                status, detail = 431, f"a header field is longer than {s.max_header_bytes} bytes (setting max_header_bytes)"
        elif status == 500:
            detail = "internal server error"
        else:
            detail = "malformed HTTP request"  # never echo the request line: it may carry a key
        log.info("http_protocol_error", status=status, error=type(exc).__name__ if exc else None)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        resp = web.Response(status=status, body=_error_bytes(status, detail), content_type="application/scim+json")
        resp.force_close()
        return resp


class _GatewayServer(Server):
    """aiohttp's Server making :class:`_GatewayRequestHandler` connections (the class is set per app)."""

    handler_class: type[RequestHandler] = RequestHandler

    def __call__(self) -> RequestHandler:
        return self.handler_class(self, loop=self._loop, **self._kwargs)


def _install_server(app: web.Application, settings: Settings) -> None:
    make = app._make_handler
    handler_class = type("GatewayRequestHandler", (_GatewayRequestHandler,), {"gateway_settings": settings})
    server_class = type("GatewayServer", (_GatewayServer,), {"handler_class": handler_class})

    def make_handler(**kwargs: Any) -> Server:
        server = make(**kwargs)
        server.__class__ = server_class  # the same object, with SCIM-shaped protocol errors per connection
        return server

    app._make_handler = make_handler  # type: ignore[method-assign]


def handler_args(settings: Settings) -> dict[str, Any]:
    """aiohttp connection-handler options for the server limits (``web.Application(handler_args=...)``)."""
    field = settings.max_header_bytes
    if field == settings.max_request_line_bytes:
        field += 1  # one byte apart, so a LineTooLong's limit tells a request line (414) from a header (431)
    return {"max_line_size": settings.max_request_line_bytes, "max_field_size": field, "lingering_time": 2.0}


def setup(app: web.Application, settings: Settings) -> None:
    """Install the guard and the server limits on ``app`` (from ``create_app``)."""
    guard = app[guard_key] = RequestGuard(settings)
    from gateway.http.appkeys import metrics_key

    if metrics_key in app:
        guard.on_reject = app[metrics_key].count_rate_limited
    _install_server(app, settings)
    try:
        from gateway.http.portal import login_limiter_key
    except ImportError:
        return

    async def portal_login_limiter(request: web.Request) -> float | None:
        try:
            guard.check_address(request)
        except TooManyRequestsError as exc:
            return float(exc.headers["Retry-After"])
        return None

    app[login_limiter_key] = portal_login_limiter
