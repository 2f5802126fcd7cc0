"""The one module that calls per-request hooks: identify, normalise, run the core, shape, notify.

``http`` hands it a :class:`ScimRequest`; it returns the status, body and headers to send.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from gateway.core import discovery, routes
from gateway.core.extensions import TenantTypes
from gateway.core.errors import InvalidSyntaxError, NotFoundError, ScimError
from gateway.core.limits import check_operations
from gateway.core.routes import Route
from gateway.core.schema import SEARCH_REQUEST_SCHEMA
from gateway.core.paging import list_params
from gateway.core.service import Result
from gateway.runtime import Gateway
from gateway.store.base import TenantRow
from gateway.types import Client, ScimRequest

log = logging.getLogger("scim_gateway.pipeline")
GENERIC = "generic"
@dataclass(slots=True)
class Outcome:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    client: str = GENERIC


def identify(gw: Gateway, request: ScimRequest) -> Client:
    idp = request.tenant.idp
    if idp and idp != "auto":
        return Client(idp)
    name = gw.plugins.hook.scim_identify_client(request=request, tenant=request.tenant)
    return Client(name or GENERIC)


async def handle(gw: Gateway, request: ScimRequest, tenant: TenantRow) -> Outcome:
    """Run one SCIM request for ``tenant`` (the stored row behind ``request.tenant``) through the hooks
    and the core. ScimErrors propagate to the HTTP layer."""
    client = identify(gw, request)
    hooks = gw.plugins.hooks_for(client.name)
    try:
        result = await _dispatch(gw, hooks, client, request, tenant)
    except ScimError as exc:
        body = exc.to_body()
        hooks.scim_shape_response(client=client, request=request, status=exc.status, body=body)
        raise _Shaped(exc, body, client.name) from exc
    hooks.scim_shape_response(client=client, request=request, status=result.status, body=result.body)
    for change in result.changes:
        await gw.plugins.notify(hooks.scim_resource_changed, client=client, change=change)
    return Outcome(result.status, result.body, result.headers, client.name)


class _Shaped(Exception):
    """A ScimError whose body the plugins have already shaped."""

    def __init__(self, error: ScimError, body: dict[str, Any], client: str) -> None:
        super().__init__(error.detail)
        self.error = error
        self.body = body
        self.client = client


ShapedError = _Shaped


def _body_object(request: ScimRequest) -> dict[str, Any]:
    if not isinstance(request.body, dict):
        raise InvalidSyntaxError("request body must be a JSON object")
    return request.body


async def _dispatch(gw: Gateway, hooks: Any, client: Client, request: ScimRequest, tenant: TenantRow) -> Result:
    r = routes.resolve(request.path)
    method = request.method.upper()
    if method not in r.methods:
        raise ScimError(f"{method} is not allowed on {request.path}", status=405)
    svc = gw.service
    # List pages may carry pre-encoded resources when nothing but the HTTP layer's serialiser reads the
    # body: no plugin shapes this client's responses and the activity log does not record successes.
    encoded = not tenant.log_successful_events and not gw.plugins.implements(hooks, "scim_shape_response")
    # the tenant's own resource types, with its declared extensions
    tenant_types = await svc.types_for(tenant)
    if request.query:
        hooks.scim_normalize_query(client=client, request=request, query=request.query)
    base = gw.settings.scim_url(tenant.id)
    ctx: dict[str, Any] = {"client": client.name, "request": request}

    if r.kind == "discovery":
        return _discovery(gw, r, base, tenant_types)
    if r.kind == "bulk":
        from gateway.core.bulk import run_bulk

        async def run_one(sub: ScimRequest) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
            # each Bulk operation goes through this same pipeline, hooks included
            try:
                out = await handle(gw, sub, tenant)
            except _Shaped as shaped:
                return shaped.error.status, shaped.body, {}
            return out.status, out.body, out.headers

        return await run_bulk(request, run_one, max_operations=gw.settings.bulk_max_operations)
    if r.kind == "search":
        body = _body_object(request)
        if not any(isinstance(s, str) and s.lower() == SEARCH_REQUEST_SCHEMA.lower() for s in body.get("schemas") or ()):
            raise InvalidSyntaxError(f"a .search body must list the schema {SEARCH_REQUEST_SCHEMA}")
        query = {k: (",".join(v) if isinstance(v, list) else str(v)) for k, v in body.items() if k != "schemas"}
        hooks.scim_normalize_query(client=client, request=request, query=query)
        params = list_params(query)
        if r.resource_type is None:
            return await _search_all(gw, tenant, params, tenant_types)
        return await svc.search(tenant, tenant_types.types[r.resource_type], params, encoded=encoded)

    assert r.resource_type is not None
    rtype = tenant_types.types[r.resource_type]
    params = list_params(request.query)
    if r.kind == "collection":
        if method == "GET":
            return await svc.search(tenant, rtype, params, encoded=encoded)
        payload = _body_object(request)
        hooks.scim_normalize_resource(client=client, request=request, payload=payload)

        def correlation(resource: dict[str, Any]) -> str | None:
            out = hooks.scim_correlation_filter(client=client, request=request, resource=resource)
            return out or None

        return await svc.create(
            tenant, rtype, payload, correlation=correlation, context=ctx,
            attributes=params.attributes, excluded=params.excluded,
        )
    rid = r.resource_id
    assert rid is not None
    if method == "GET":
        return await svc.get(
            tenant, rtype, rid, attributes=params.attributes, excluded=params.excluded,
            if_none_match=request.headers.get("if-none-match"),
        )
    if method == "DELETE":
        return await svc.delete(tenant, rtype, rid, if_match=request.headers.get("if-match"), context=ctx)
    payload = _body_object(request)
    if method == "PUT":
        hooks.scim_normalize_resource(client=client, request=request, payload=payload)
        return await svc.replace(
            tenant, rtype, rid, payload, if_match=request.headers.get("if-match"), context=ctx,
            attributes=params.attributes, excluded=params.excluded,
        )
    ops = next((v for k, v in payload.items() if k.lower() == "operations"), None)
    check_operations(ops, gw.settings.max_patch_operations)  # as the client sent them, before any plugin splits one
    if isinstance(ops, list):
        hooks.scim_normalize_patch(client=client, request=request, operations=ops)
    return await svc.patch(
        tenant, rtype, rid, payload, if_match=request.headers.get("if-match"), context=ctx,
        attributes=params.attributes, excluded=params.excluded,
    )


async def _search_all(gw: Gateway, tenant: TenantRow, params: Any, tenant_types: TenantTypes) -> Result:
    """Root-level ``/.search`` (RFC 7644 §3.4.3): the same query over every resource type, concatenated."""
    svc = gw.service
    resources: list[dict[str, Any]] = []
    total = 0
    want = params.count if params.count is not None else svc.default_page_size
    skip = max(params.start_index, 1) - 1
    for rtype in tenant_types.types.values():
        counted = await svc.search(tenant, rtype, dataclasses.replace(params, count=0, start_index=1))
        n = counted.body["totalResults"] if counted.body else 0
        if skip < n and len(resources) < want:
            sub = dataclasses.replace(params, start_index=skip + 1, count=want - len(resources))
            page = await svc.search(tenant, rtype, sub)
            resources.extend(page.body["Resources"] if page.body else [])
        skip = max(0, skip - n)
        total += n
    return Result(200, {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": max(params.start_index, 1),
        "Resources": resources,
    })


def _discovery(gw: Gateway, r: Route, base: str, tenant_types: TenantTypes) -> Result:
    s = gw.settings
    if r.discovery == "serviceproviderconfig":
        if r.key:
            raise NotFoundError("ServiceProviderConfig has no sub-resources")
        return Result(200, discovery.service_provider_config(
            base, max_results=s.max_page_size, default_page_size=s.default_page_size, bulk_max_operations=s.bulk_max_operations,
            max_payload=s.max_body_bytes, bulk_supported=gw.bulk_supported,
        ))
    if r.discovery == "resourcetypes":
        docs = discovery.resource_type_documents(base, tenant_types.types.values())
    else:
        docs = discovery.schema_documents(base, tenant_types.documents)
    if r.key:
        return Result(200, discovery.find(docs, r.key, "ResourceType" if r.discovery == "resourcetypes" else "Schema"))
    return Result(200, discovery.list_response(docs))
