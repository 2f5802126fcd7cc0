"""Who is calling the admin API: the operator (admin bearer token or an operator portal session) or one
tenant's admin (a portal session opened from a portal link). One function decides, for every route.

Use it for any route under ``/api/v1``::

    from gateway.http.access import admin_route, principal_key

    r.add_get(PREFIX + "/tenants/{tenant_id}/events", admin_route(list_events))            # tenant-scoped allowed
    r.add_post(PREFIX + "/tenants/{tenant_id}/webhooks", admin_route(add_hook, operator_only=True))

``admin_route(fn)`` authenticates, scopes and maps :class:`~gateway.identity.management.AdminError`
to ``{"error", "detail"}``; ``fn`` may read ``request[principal_key]``. Rules, in order:

* ``Authorization: Bearer <admin token>`` → the operator (compared in constant time).
* otherwise the portal session cookie → that session's principal. A state-changing method
  (anything but GET/HEAD/OPTIONS) authenticated by the cookie must carry an ``Origin`` header equal
  to the gateway's own origin (its public URL, or the Host the request was sent to): 403 otherwise,
  before the handler runs, so a cross-site request changes nothing.
* neither → 401.
* ``operator_only=True`` and a tenant principal → 403 ``operator_only``.
* a tenant principal and a ``{tenant_id}`` in the route that is not its own → 404, exactly the
  answer for a tenant that does not exist, so nothing is learnt about other tenants.

:func:`authorize` is the same decision for handlers that are not wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable, Literal
from urllib.parse import urlsplit

from aiohttp import web

from gateway.core.errors import ScimError
from gateway.http.appkeys import gateway_key
from gateway.identity import management, portal_access

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "scimgw_portal"
SECURE_COOKIE = "__Host-scimgw_portal"  # __Host-: Secure, Path=/, no Domain: no sibling host can set or read it


class AdminApiError(ScimError):
    """An admin API failure; the middleware renders ``scim_type`` as the ``error`` code."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. ``tenant_id`` None is the operator; otherwise the one tenant this caller may reach."""

    tenant_id: str | None
    via: Literal["token", "session"]
    session_hash: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None

    def may_reach(self, tenant_id: str) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id


principal_key = web.RequestKey("principal_key", Principal)


def cookie_name(request: web.Request) -> str:
    return SECURE_COOKIE if request.app[gateway_key].settings.secure_cookies() else COOKIE


def idle_timeout(request: web.Request) -> timedelta:
    return timedelta(minutes=request.app[gateway_key].settings.portal_idle_minutes)


def session_lifetime(request: web.Request) -> timedelta:
    return timedelta(hours=request.app[gateway_key].settings.portal_session_hours)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: web.Request) -> bool:
    """The request's ``Origin`` is the gateway's own (public URL, or the Host it was addressed to)."""
    origin = request.headers.get("Origin", "").strip().lower()
    if not origin or origin == "null":
        return False
    allowed = {_origin_of(request.app[gateway_key].settings.base_url()), f"{request.scheme}://{request.host}".lower()}
    return origin in allowed


def _unauthorized(detail: str) -> AdminApiError:
    return AdminApiError(detail, status=401, scim_type="unauthorized")


def _forbidden(code: str, detail: str) -> AdminApiError:
    return AdminApiError(detail, status=403, scim_type=code)


async def authenticate(request: web.Request) -> Principal:
    """The principal behind the request, or :class:`AdminApiError` 401/403 (see the module docstring)."""
    gw = request.app[gateway_key]
    header = request.headers.get("Authorization")
    if header is not None:
        expected = gw.settings.admin_token
        if not expected:
            raise _unauthorized("the admin API is disabled: no admin token is configured (SCIM_GATEWAY_ADMIN_TOKEN)")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not portal_access.token_matches(presented.strip(), expected):
            raise _unauthorized("send 'Authorization: Bearer <admin token>'")
        return Principal(tenant_id=None, via="token")
    sid = request.cookies.get(cookie_name(request))
    if sid:
        session = await portal_access.load_session(gw.store, sid, idle=idle_timeout(request))
        if session is None:
            raise _unauthorized("your portal session has ended (signed out or timed out): sign in again")
        if request.method not in SAFE_METHODS and not same_origin(request):
            raise _forbidden("cross_site_request", "refused: a change made with a portal session must come from the portal's own pages (same-origin Origin header)")
        return Principal(tenant_id=session.tenant_id, via="session", session_hash=session.id_hash)
    if not gw.settings.admin_token:
        raise _unauthorized("the admin API is disabled: no admin token is configured (SCIM_GATEWAY_ADMIN_TOKEN)")
    raise _unauthorized("send 'Authorization: Bearer <admin token>' or sign in to the portal")


def require_scope(request: web.Request, principal: Principal, *, operator_only: bool) -> None:
    if operator_only and not principal.is_operator:
        raise _forbidden("operator_only", "only the gateway operator may do this; a portal link reaches one tenant's settings")
    tenant_id = request.match_info.get("tenant_id")
    if tenant_id is not None and not principal.may_reach(tenant_id):
        raise AdminApiError(f"no tenant {tenant_id!r}", status=404, scim_type="not_found")


async def authorize(request: web.Request, *, operator_only: bool = False) -> Principal:
    """Authenticate and scope the request; stores the principal under ``request[principal_key]``."""
    principal = await authenticate(request)
    require_scope(request, principal, operator_only=operator_only)
    request[principal_key] = principal
    return principal


def admin_error(exc: management.AdminError) -> AdminApiError:
    return AdminApiError(exc.detail, status=exc.status, scim_type=exc.code)


def admin_route(fn: Callable[[web.Request], Awaitable[Any]], *, operator_only: bool = False) -> Handler:
    """Wrap an admin API handler: :func:`authorize`, run, render its result as JSON (or pass a response)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await authorize(request, operator_only=operator_only)
        try:
            out = await fn(request)
        except management.AdminError as exc:
            raise admin_error(exc) from None
        if isinstance(out, web.StreamResponse):
            return out
        return web.json_response(out)

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler
