"""The change feed's admin API: the events API and webhook management (thin handlers).

The events API accepts the admin token or a portal session (a tenant-scoped session reaches its own
tenant's feed only); webhooks are managed with the admin bearer token only, never a portal session
(an endpoint's URL decides where a tenant's data goes, and its secret is shown in the answer).

Routes::

    GET        /api/v1/tenants/{tenant_id}/events?after=&limit=&type=
    GET/POST   /api/v1/tenants/{tenant_id}/webhooks
    GET/PATCH/DELETE  /api/v1/tenants/{tenant_id}/webhooks/{webhook_id}
    POST       /api/v1/tenants/{tenant_id}/webhooks/{webhook_id}/rotate-secret
    GET        /api/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries?status=&limit=&cursor=
    POST       /api/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from aiohttp import web

from gateway.events import endpoints, feed
from gateway.http.access import AdminApiError, Handler, admin_route, principal_key
from gateway.http.admin import PREFIX, _body, _store
from gateway.identity import management

_NO_STORE = {"Cache-Control": "no-store"}


async def list_events(request: web.Request) -> Any:
    q = request.query
    return await feed.read_events(_store(request), request.match_info["tenant_id"], after=q.get("after") or None,
                                  limit=feed.parse_limit(q.get("limit")), types=feed.parse_types(q.get("type")))


async def list_webhooks(request: web.Request) -> Any:
    return {"data": await endpoints.list_webhooks(_store(request), request.match_info["tenant_id"])}


async def create_webhook(request: web.Request) -> Any:
    body = await _body(request, endpoints.WebhookCreate)
    created = await endpoints.create_webhook(_store(request), request.match_info["tenant_id"], body)
    return web.json_response(created, status=201, headers=_NO_STORE)  # the secret is in this one response


async def get_webhook(request: web.Request) -> Any:
    m = request.match_info
    return await endpoints.get_webhook(_store(request), m["tenant_id"], m["webhook_id"])


async def update_webhook(request: web.Request) -> Any:
    m = request.match_info
    body = await _body(request, endpoints.WebhookUpdate)
    return await endpoints.update_webhook(_store(request), m["tenant_id"], m["webhook_id"], body)


async def delete_webhook(request: web.Request) -> Any:
    m = request.match_info
    await endpoints.delete_webhook(_store(request), m["tenant_id"], m["webhook_id"])
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> Any:
    m = request.match_info
    return web.json_response(await endpoints.rotate_secret(_store(request), m["tenant_id"], m["webhook_id"]),
                             headers=_NO_STORE)


async def list_deliveries(request: web.Request) -> Any:
    m, q = request.match_info, request.query
    return await endpoints.list_deliveries(_store(request), m["tenant_id"], m["webhook_id"],
                                           status=q.get("status") or None,
                                           limit=management.page_limit(q.get("limit")), cursor=q.get("cursor") or None)


async def retry_delivery(request: web.Request) -> Any:
    m = request.match_info
    return await endpoints.retry_delivery(_store(request), m["tenant_id"], m["webhook_id"], m["delivery_id"])


def _token_only(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    async def guarded(request: web.Request) -> Any:
        if request[principal_key].via != "token":
            raise AdminApiError("webhooks are managed with the admin token ('Authorization: Bearer <admin token>'), "
                                "not a portal session", status=403, scim_type="admin_token_required")
        return await fn(request)

    guarded.__name__ = fn.__name__
    return admin_route(guarded, operator_only=True)


_route = _token_only


def setup_routes(app: web.Application) -> None:
    t = PREFIX + "/tenants/{tenant_id}"
    w = t + "/webhooks/{webhook_id}"
    r = app.router
    r.add_get(t + "/events", admin_route(list_events), allow_head=False)
    r.add_get(t + "/webhooks", _route(list_webhooks), allow_head=False)
    r.add_post(t + "/webhooks", _route(create_webhook))
    r.add_get(w, _route(get_webhook), allow_head=False)
    r.add_patch(w, _route(update_webhook))
    r.add_delete(w, _route(delete_webhook))
    r.add_post(w + "/rotate-secret", _route(rotate_secret))
    r.add_get(w + "/deliveries", _route(list_deliveries), allow_head=False)
    r.add_post(w + "/deliveries/{delivery_id}/retry", _route(retry_delivery))
