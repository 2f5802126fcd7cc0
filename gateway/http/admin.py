"""The admin API under ``/api/v1``: thin handlers over :mod:`gateway.identity.management` and :mod:`gateway.identity.sso`.

Every route needs ``Authorization: Bearer <admin token>`` (``SCIM_GATEWAY_ADMIN_TOKEN``), compared
in constant time; with no token configured every request is refused, so a gateway started without
one never exposes tenant administration. Errors are ``{"error": <code>, "detail": <text>}`` (the
edge middleware renders any :class:`ScimError` raised here that way for paths under ``/api/``).

Routes::

    GET/POST   /api/v1/tenants
    GET/PATCH/DELETE /api/v1/tenants/{tenant_id}
    GET/POST   /api/v1/tenants/{tenant_id}/api-keys
    DELETE     /api/v1/tenants/{tenant_id}/api-keys/{key_id}
    GET        /api/v1/tenants/{tenant_id}/users?limit=&cursor=
    PUT        /api/v1/tenants/{tenant_id}/users/{user_id}/roles
    GET        /api/v1/tenants/{tenant_id}/activity?type=&limit=&cursor=
    POST       /api/v1/tenants/{tenant_id}/sso/sign-in
"""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable

from aiohttp import web

from gateway.core.errors import ScimError
from gateway.http.appkeys import gateway_key
from gateway.identity import management, sso

PREFIX = "/api/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminApiError(ScimError):
    """An admin API failure; the middleware renders ``scim_type`` as the ``error`` code."""


def _error(exc: management.AdminError) -> AdminApiError:
    return AdminApiError(exc.detail, status=exc.status, scim_type=exc.code)


def _authorize(request: web.Request) -> None:
    expected = request.app[gateway_key].settings.admin_token
    if not expected:
        raise AdminApiError("the admin API is disabled: no admin token is configured (SCIM_GATEWAY_ADMIN_TOKEN)",
                            status=401, scim_type="unauthorized")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise AdminApiError("send 'Authorization: Bearer <admin token>'", status=401, scim_type="unauthorized")


def _route(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    """Authenticate, run the action, turn :class:`AdminError` into the JSON error response."""

    async def handler(request: web.Request) -> web.StreamResponse:
        _authorize(request)
        try:
            out = await fn(request)
        except management.AdminError as exc:
            raise _error(exc) from None
        if isinstance(out, web.StreamResponse):
            return out
        return web.json_response(out)

    handler.__name__ = fn.__name__
    return handler


async def _body(request: web.Request, model: type[Any], *, read_only_check: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise management.AdminError(400, "invalid_json", "a JSON object body is required")
    if read_only_check:
        management.reject_read_only(raw)
    return management.parse(model, raw)


def _scim_url(request: web.Request) -> Callable[[str], str]:
    return request.app[gateway_key].settings.scim_url


def _idps(request: web.Request) -> list[str]:
    return request.app[gateway_key].plugins.idp_plugins()


def _store(request: web.Request) -> Any:
    return request.app[gateway_key].store


# tenants ---------------------------------------------------------------------------------------
async def list_tenants(request: web.Request) -> Any:
    return {"tenants": await management.list_tenants(_store(request), _scim_url(request))}


async def create_tenant(request: web.Request) -> Any:
    body = await _body(request, management.TenantCreate, read_only_check=True)
    return web.json_response(await management.create_tenant(_store(request), body, _scim_url(request), idps=_idps(request)), status=201)


async def get_tenant(request: web.Request) -> Any:
    return await management.get_tenant(_store(request), request.match_info["tenant_id"], _scim_url(request))


async def update_tenant(request: web.Request) -> Any:
    body = await _body(request, management.TenantUpdate, read_only_check=True)
    return await management.update_tenant(
        _store(request), request.match_info["tenant_id"], body, _scim_url(request), idps=_idps(request)
    )


async def delete_tenant(request: web.Request) -> Any:
    return await management.delete_tenant(_store(request), request.match_info["tenant_id"])


# api keys --------------------------------------------------------------------------------------
async def list_keys(request: web.Request) -> Any:
    return {"api_keys": await management.list_keys(_store(request), request.match_info["tenant_id"])}


async def create_key(request: web.Request) -> Any:
    body = await _body(request, management.ApiKeyCreate)
    created = await management.create_key(_store(request), request.match_info["tenant_id"], body)
    # The key is in this one response: keep it out of every cache between here and the caller.
    return web.json_response(created, status=201, headers={"Cache-Control": "no-store"})


async def revoke_key(request: web.Request) -> Any:
    await management.revoke_key(_store(request), request.match_info["tenant_id"], request.match_info["key_id"])
    return web.Response(status=204)


# users -----------------------------------------------------------------------------------------
async def list_users(request: web.Request) -> Any:
    q = request.query
    return await management.list_users(_store(request), request.match_info["tenant_id"], limit=management.page_limit(q.get("limit")),
                                  cursor=q.get("cursor") or None)


async def set_roles(request: web.Request) -> Any:
    body = await _body(request, management.RolesUpdate)
    return await management.set_roles(_store(request), request.match_info["tenant_id"], request.match_info["user_id"], body)


# activity and sign-in ----------------------------------------------------------------------------
async def list_activity(request: web.Request) -> Any:
    q = request.query
    return await management.list_activity(_store(request), request.match_info["tenant_id"], type=q.get("type") or None,
                                     limit=management.page_limit(q.get("limit")), cursor=q.get("cursor") or None)


async def sign_in(request: web.Request) -> Any:
    body = await _body(request, sso.SignInRequest)
    decision = await sso.sign_in(_store(request), request.match_info["tenant_id"], body)
    return web.json_response(decision.body, status=decision.status)


def setup_routes(app: web.Application) -> None:
    """Register the admin API (called by ``create_app``)."""
    t = PREFIX + "/tenants/{tenant_id}"
    r = app.router
    r.add_get(PREFIX + "/tenants", _route(list_tenants), allow_head=False)
    r.add_post(PREFIX + "/tenants", _route(create_tenant))
    r.add_get(t, _route(get_tenant), allow_head=False)
    r.add_patch(t, _route(update_tenant))
    r.add_delete(t, _route(delete_tenant))
    r.add_get(t + "/api-keys", _route(list_keys), allow_head=False)
    r.add_post(t + "/api-keys", _route(create_key))
    r.add_delete(t + "/api-keys/{key_id}", _route(revoke_key))
    r.add_get(t + "/users", _route(list_users), allow_head=False)
    r.add_put(t + "/users/{user_id}/roles", _route(set_roles))
    r.add_get(t + "/activity", _route(list_activity), allow_head=False)
    r.add_post(t + "/sso/sign-in", _route(sign_in))
