"""The admin API under ``/api/v1``: thin handlers over :mod:`gateway.identity.management` and :mod:`gateway.identity.sso`.

Every route goes through :func:`gateway.http.access.admin_route`: the admin bearer token
(``SCIM_GATEWAY_ADMIN_TOKEN``, compared in constant time) or a portal session cookie; a session
opened from a portal link reaches only its own tenant (other tenants 404, operator-only routes 403),
and cookie-authenticated writes must be same-origin. With no token configured and no session every
request is refused, so a gateway started without one never exposes tenant administration. Errors are ``{"error": <code>, "detail": <text>}`` (the
edge middleware renders any :class:`ScimError` raised here that way for paths under ``/api/``).

Routes::

    GET/POST   /api/v1/tenants                                  operator only
    GET/PATCH  /api/v1/tenants/{tenant_id}                      (name, activity_retention: operator only)
    DELETE     /api/v1/tenants/{tenant_id}                      operator only: the tenant and all its data
    POST       /api/v1/tenants/{tenant_id}/portal-links         operator only
    GET/POST   /api/v1/tenants/{tenant_id}/api-keys
    DELETE     /api/v1/tenants/{tenant_id}/api-keys/{key_id}
    GET        /api/v1/tenants/{tenant_id}/users?limit=&cursor=&search=
    PUT        /api/v1/tenants/{tenant_id}/users/{user_id}/roles
    GET        /api/v1/tenants/{tenant_id}/activity?type=&limit=&cursor=
    GET        /api/v1/tenants/{tenant_id}/activity/health      last request, errors over 24 hours, hourly buckets
    POST       /api/v1/tenants/{tenant_id}/sso/sign-in          operator only
    GET        /api/v1/tenants/{tenant_id}/schemas
    GET/PUT    /api/v1/tenants/{tenant_id}/schemas/{urn}
    DELETE     /api/v1/tenants/{tenant_id}/schemas/{urn}?force=true
"""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from gateway.core.errors import ScimError
from gateway.http.access import AdminApiError, Handler, Principal, admin_route, authorize, principal_key
from gateway.http.appkeys import gateway_key
from gateway.http.limits import read_json
from gateway.identity import extensions, management, sso

PREFIX = "/api/v1"
# Tenant settings only the operator may change: the tenant's label and the storage it may use.
_OPERATOR_FIELDS = ("name", "activity_retention", "rate_limit")

__all__ = ["AdminApiError", "Handler", "PREFIX", "Principal", "admin_route", "authorize", "principal_key", "setup_routes"]


async def _read(request: web.Request) -> bytes:
    """The JSON body as UTF-8 bytes, checked for size, read time, depth, NUL and charset (b"" when empty)."""
    try:
        _, raw = await read_json(request, request.app[gateway_key].settings)
    except ScimError as exc:  # rendered as {"error", "detail"} with the same status
        raise AdminApiError(exc.detail, status=exc.status, scim_type="validation_error" if exc.status == 400 else None) from None
    return raw


async def _body(request: web.Request, model: type[Any], *, read_only_check: bool = False) -> Any:
    raw = await _read(request)
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
    if not request[principal_key].is_operator:
        denied = [f for f in _OPERATOR_FIELDS if f in body.model_fields_set]
        if denied:
            raise AdminApiError(f"only the gateway operator may change {', '.join(denied)}", status=403, scim_type="operator_only")
    return await management.update_tenant(
        _store(request), request.match_info["tenant_id"], body, _scim_url(request), idps=_idps(request)
    )


async def delete_tenant(request: web.Request) -> Any:
    return await management.delete_tenant(_store(request), request.match_info["tenant_id"])


async def create_portal_link(request: web.Request) -> Any:
    raw = await _read(request)
    body = management.parse(management.PortalLinkCreate, raw if raw.strip() else b"{}")
    link = await management.create_portal_link(_store(request), request.match_info["tenant_id"], body,
                                               request.app[gateway_key].settings.base_url())
    return web.json_response(link, status=201, headers={"Cache-Control": "no-store"})


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
                                       cursor=q.get("cursor") or None, search=q.get("search") or None)


async def set_roles(request: web.Request) -> Any:
    body = await _body(request, management.RolesUpdate)
    return await management.set_roles(_store(request), request.match_info["tenant_id"], request.match_info["user_id"], body)


# activity and sign-in ----------------------------------------------------------------------------
async def list_activity(request: web.Request) -> Any:
    q = request.query
    await request.app[gateway_key].activity.flush()  # this process's own pending events first
    return await management.list_activity(_store(request), request.match_info["tenant_id"], type=q.get("type") or None,
                                     limit=management.page_limit(q.get("limit")), cursor=q.get("cursor") or None)


async def activity_health(request: web.Request) -> Any:
    return await management.connection_health(_store(request), request.match_info["tenant_id"])


async def sign_in(request: web.Request) -> Any:
    body = await _body(request, sso.SignInRequest)
    decision = await sso.sign_in(_store(request), request.match_info["tenant_id"], body)
    return web.json_response(decision.body, status=decision.status)


# custom schema extensions ------------------------------------------------------------------------
def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0", ""):
        raise management.AdminError(400, "validation_error", f"{name} must be true or false, not {raw[:20]!r}")
    return raw in ("true", "1")


async def list_schemas(request: web.Request) -> Any:
    return {"schemas": await extensions.list_schemas(_store(request), request.match_info["tenant_id"], _scim_url(request))}


async def get_schema(request: web.Request) -> Any:
    return await extensions.get_schema(_store(request), request.match_info["tenant_id"], request.match_info["urn"],
                                       _scim_url(request))


async def put_schema(request: web.Request) -> Any:
    raw = await _read(request)
    if not raw.strip():
        raise management.AdminError(400, "invalid_json", "a JSON object body is required: an RFC 7643 §7 schema")
    status, view = await extensions.put_schema(_store(request), request.match_info["tenant_id"],
                                               request.match_info["urn"], raw, _scim_url(request))
    return web.json_response(view, status=status)


async def delete_schema(request: web.Request) -> Any:
    await extensions.delete_schema(_store(request), request.match_info["tenant_id"], request.match_info["urn"],
                                   force=_flag(request, "force"))
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    """Register the admin API (called by ``create_app``)."""
    t = PREFIX + "/tenants/{tenant_id}"
    r = app.router
    r.add_get(PREFIX + "/tenants", admin_route(list_tenants, operator_only=True), allow_head=False)
    r.add_post(PREFIX + "/tenants", admin_route(create_tenant, operator_only=True))
    r.add_get(t, admin_route(get_tenant), allow_head=False)
    r.add_patch(t, admin_route(update_tenant))
    r.add_delete(t, admin_route(delete_tenant, operator_only=True))
    r.add_post(t + "/portal-links", admin_route(create_portal_link, operator_only=True))
    r.add_get(t + "/api-keys", admin_route(list_keys), allow_head=False)
    r.add_post(t + "/api-keys", admin_route(create_key))
    r.add_delete(t + "/api-keys/{key_id}", admin_route(revoke_key))
    r.add_get(t + "/users", admin_route(list_users), allow_head=False)
    r.add_put(t + "/users/{user_id}/roles", admin_route(set_roles))
    r.add_get(t + "/activity", admin_route(list_activity), allow_head=False)
    r.add_get(t + "/activity/health", admin_route(activity_health), allow_head=False)
    r.add_post(t + "/sso/sign-in", admin_route(sign_in, operator_only=True))
    r.add_get(t + "/schemas", admin_route(list_schemas), allow_head=False)
    r.add_get(t + "/schemas/{urn}", admin_route(get_schema), allow_head=False)
    r.add_put(t + "/schemas/{urn}", admin_route(put_schema))
    r.add_delete(t + "/schemas/{urn}", admin_route(delete_schema))
