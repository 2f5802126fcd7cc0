"""OpenAPI 3.1 documents: the admin API (``/api/v1/openapi.json``) and the SCIM endpoints (``/scim/v2/openapi.json``).

The admin document's request bodies are the JSON Schemas of the very pydantic models the handlers
validate with (:mod:`gateway.identity.management`, :mod:`gateway.identity.sso`), so the document
cannot drift from what is accepted; responses are described by the models below, which the test
suite checks against live responses (schemathesis). A route added under ``/api/v1`` needs its
entry in :data:`ADMIN_OPERATIONS` (a test fails for an undocumented route).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from gateway.events import endpoints
from gateway.http import selftest as selftest_api
from gateway.identity import extensions, management, sso
from gateway.identity.roles import RoleMapping

ADMIN_DOC_PATH = "/api/v1/openapi.json"
SCIM_DOC_PATH = "/scim/v2/openapi.json"
_REF = "#/components/schemas/{model}"


# --- response models (what the views in gateway.identity.management return) ---------------------
class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(BaseModel):
    """Every admin API failure: a stable snake_case code and a sentence for humans."""

    model_config = ConfigDict(extra="forbid")
    error: str
    detail: str | None


class RetentionOut(_Out):
    max_age_days: int | None
    max_events: int | None


class Tenant(_Out):
    id: str
    name: str
    idp: str
    scim_enabled: bool
    log_successful_events: bool
    role_mapping: RoleMapping
    activity_retention: RetentionOut
    scim_url: str
    created: str


class TenantList(_Out):
    tenants: list[Tenant]


class TenantDeleted(_Out):
    id: str
    deleted: Literal[True]
    removed: dict[str, int]


class ApiKey(_Out):
    id: str
    name: str
    prefix: str
    created: str
    last_used: str | None
    revoked: str | None


class ApiKeyList(_Out):
    api_keys: list[ApiKey]


class ApiKeyCreated(_Out):
    id: str
    name: str
    key: str
    created: str


class AdminUser(_Out):
    id: str
    userName: str | None
    email: str | None
    givenName: str | None
    familyName: str | None
    active: bool
    roles: list[str]
    provisioned_by: str
    created: str
    lastModified: str


class UserPage(_Out):
    users: list[AdminUser]
    next_cursor: str | None


class Event(_Out):
    seq: int
    type: str
    created: str


class ActivityPage(_Out):
    events: list[Event]
    next_cursor: str | None


class SignInAllowed(_Out):
    decision: Literal["allow"]
    jit_created: bool
    roles: list[str]
    roles_source: str
    user: AdminUser


class SignInRejected(_Out):
    decision: Literal["reject"]
    reason: str
    detail: str


class PortalLink(_Out):
    url: str
    expires_at: str


class ConnectionHealth(_Out):
    last_request: str | None
    errors_24h: int
    last_error: Any


class SchemaView(_Out):
    """An RFC 7643 §7 schema declared for the tenant, with the gateway's members."""

    schemas: list[str]
    id: str
    resourceType: str
    required: bool
    meta: dict[str, Any]


class SchemaList(_Out):
    schemas: list[SchemaView]


class SelftestReport(_Out):
    passed: bool
    counts: dict[str, Any]
    steps: list[dict[str, Any]]


class FeedEvent(_Out):
    id: str
    type: str


class EventPage(_Out):
    data: list[FeedEvent]
    next_cursor: str | None


class Webhook(_Out):
    id: str
    url: str
    events: list[str]
    all_events: bool
    description: str | None
    enabled: bool
    failing: bool
    created: str
    updated: str


class WebhookWithSecret(Webhook):
    secret: str


class WebhookList(_Out):
    data: list[Webhook]


class Delivery(_Out):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    sequence: int
    status: str
    attempts: int
    created: str


class DeliveryPage(_Out):
    data: list[Delivery]
    next_cursor: str | None


# --- the admin operations -----------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    method: str
    path: str  # below /api/v1
    operation_id: str
    summary: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    query: tuple[tuple[str, dict[str, Any], str], ...] = ()
    extra_responses: dict[int, Any] = field(default_factory=dict)
    operator_only: bool = False


_LIMIT = ("limit", {"type": "integer", "minimum": 1, "maximum": management.MAX_PAGE, "default": 50}, "page size")
_CURSOR = ("cursor", {"type": "string"}, "next_cursor of the previous page")
_T = "/tenants/{tenant_id}"

ADMIN_OPERATIONS: list[Op] = [
    Op("get", "/tenants", "listTenants", "List tenants", TenantList, operator_only=True),
    Op("post", "/tenants", "createTenant", "Create a tenant (SCIM starts off)", Tenant, 201, management.TenantCreate,
       operator_only=True),
    Op("get", _T, "getTenant", "Read a tenant", Tenant),
    Op("patch", _T, "updateTenant", "Change a tenant's settings", Tenant, body=management.TenantUpdate),
    Op("delete", _T, "deleteTenant", "Delete a tenant and all its data in one transaction (its keys stop at once); "
       "says how many rows of each table were removed", TenantDeleted, operator_only=True),
    Op("post", _T + "/portal-links", "createPortalLink", "A single-use, expiring link to the tenant's portal", PortalLink,
       201, management.PortalLinkCreate, operator_only=True),
    Op("get", _T + "/api-keys", "listApiKeys", "List the tenant's API keys (never their values)", ApiKeyList),
    Op("post", _T + "/api-keys", "createApiKey", "Create an API key: the only response that holds its value",
       ApiKeyCreated, 201, management.ApiKeyCreate),
    Op("delete", _T + "/api-keys/{key_id}", "revokeApiKey", "Revoke an API key", None, 204),
    Op("get", _T + "/users", "listUsers", "The tenant's users with their roles, paged by cursor", UserPage,
       query=(_LIMIT, _CURSOR, ("search", {"type": "string"}, "only users whose userName or email contains this"))),
    Op("put", _T + "/users/{user_id}/roles", "setRoles", "Set a user's roles (portal-managed role mapping only)",
       AdminUser, body=management.RolesUpdate),
    Op("get", _T + "/activity", "listActivity", "The tenant's activity log, newest first", ActivityPage,
       query=(("type", {"type": "string", "enum": ["scim_provision", "scim_deprovision", "scim_error", "scim_read"]},
               "only events of this type"), _LIMIT, _CURSOR)),
    Op("get", _T + "/activity/health", "getConnectionHealth", "When the IdP last reached the SCIM endpoint, and "
       "errors over 24 hours", ConnectionHealth),
    Op("get", _T + "/schemas", "listSchemas", "The tenant's custom schema extensions", SchemaList),
    Op("get", _T + "/schemas/{urn}", "getSchema", "One custom schema extension", SchemaView),
    Op("put", _T + "/schemas/{urn}", "putSchema", "Declare or replace a custom schema extension (RFC 7643 §7)",
       SchemaView, body=extensions.SchemaDefinition, extra_responses={201: "SchemaView"}),
    Op("delete", _T + "/schemas/{urn}", "deleteSchema", "Remove a custom schema extension (force: even if in use)",
       None, 204, query=(("force", {"type": "string", "enum": ["true", "false"]}, "remove even if resources use it"),)),
    Op("get", _T + "/events", "listEvents", "The tenant's change feed, oldest first from a cursor (see docs/events.md)",
       EventPage, query=(("after", {"type": "string"}, "next_cursor of the previous page"), _LIMIT,
                         ("type", {"type": "string"}, "comma-separated event types"))),
    Op("get", _T + "/webhooks", "listWebhooks", "The tenant's webhook endpoints (admin token only)", WebhookList,
       operator_only=True),
    Op("post", _T + "/webhooks", "createWebhook", "Add a webhook endpoint: the only answer with its secret",
       WebhookWithSecret, 201, endpoints.WebhookCreate, operator_only=True),
    Op("get", _T + "/webhooks/{webhook_id}", "getWebhook", "One webhook endpoint", Webhook, operator_only=True),
    Op("patch", _T + "/webhooks/{webhook_id}", "updateWebhook", "Change a webhook endpoint", Webhook,
       body=endpoints.WebhookUpdate, operator_only=True),
    Op("delete", _T + "/webhooks/{webhook_id}", "deleteWebhook", "Remove a webhook endpoint", None, 204,
       operator_only=True),
    Op("post", _T + "/webhooks/{webhook_id}/rotate-secret", "rotateWebhookSecret", "A new signing secret",
       WebhookWithSecret, operator_only=True),
    Op("get", _T + "/webhooks/{webhook_id}/deliveries", "listDeliveries", "An endpoint's deliveries, newest first",
       DeliveryPage, query=(("status", {"type": "string"}, "only deliveries in this state"), _LIMIT, _CURSOR),
       operator_only=True),
    Op("post", _T + "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", "retryDelivery",
       "Attempt a delivery again now, with a fresh attempt budget", Delivery, operator_only=True),
    Op("post", _T + "/selftest", "runSelftest", "Play an IdP's documented provisioning sequence against this tenant "
       "and report every step", SelftestReport, body=selftest_api.SelftestRequest),
    Op("post", _T + "/sso/sign-in", "signIn", "The application's SSO sign-in decision", SignInAllowed,
       body=sso.SignInRequest, extra_responses={403: "SignInRejected"}, operator_only=True),
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scim-gateway")
    except PackageNotFoundError:
        return "0"


def _json_content(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def admin_document() -> dict[str, Any]:
    """The admin API's OpenAPI 3.1 document, built from the request and response models."""
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
    for op in ADMIN_OPERATIONS:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.response is not None:
            models.append((op.response, "validation"))
    models += [(Error, "validation"), (SignInRejected, "validation")]
    keys, top = models_json_schema(list(dict.fromkeys(models)), ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    names = {m: keys[(m, mode)]["$ref"].rsplit("/", 1)[-1] for m, mode in models}

    paths: dict[str, dict[str, Any]] = {}
    for op in ADMIN_OPERATIONS:
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in ("tenant_id", "key_id", "user_id", "urn", "webhook_id", "delivery_id")
                  if "{" + n + "}" in op.path]
        params += [{"name": n, "in": "query", "required": False, "schema": s, "description": d} for n, s, d in op.query]
        ok: dict[str, Any] = {"description": op.summary}
        if op.response is not None:
            ok["content"] = _json_content(_ref(names[op.response]))
        responses: dict[str, Any] = {str(op.status): ok}
        for status, model in op.extra_responses.items():
            if status < 300:
                responses[str(status)] = {"description": model, "content": _json_content(_ref(model))}
            else:
                responses[str(status)] = {"description": f"{model}, or the error body",
                                          "content": _json_content({"anyOf": [_ref(model), _ref("Error")]})}
        responses["default"] = {"description": "Any failure: the error body", "content": _json_content(_ref("Error"))}
        entry: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "responses": responses}
        if op.operator_only:
            entry["description"] = "Operator only: a portal session scoped to one tenant gets 403 `operator_only`."
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": _json_content(_ref(names[op.body]))}
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "scim-gateway admin API", "version": _version(),
                 "description": "Tenants, SCIM settings, API keys, users and roles, activity, SSO sign-in decisions. "
                                "Errors are always {\"error\": code, \"detail\": text}."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"adminToken": []}, {"portalSession": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer",
                               "description": "The admin token (SCIM_GATEWAY_ADMIN_TOKEN), compared in constant time"},
                "portalSession": {"type": "apiKey", "in": "cookie", "name": "scimgw_portal",
                                  "description": "A portal session cookie; writes must be same-origin"},
            },
        },
    }


# --- the SCIM document ----------------------------------------------------------------------------
_SCIM_JSON = "application/scim+json"
_ERROR_SCHEMA_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
_SCIM_TYPES = ["invalidFilter", "tooMany", "uniqueness", "mutability", "invalidSyntax", "invalidPath", "noTarget",
               "invalidValue", "invalidVers", "sensitive"]


def _scim_body(ref: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {_SCIM_JSON: {"schema": schema}, "application/json": {"schema": schema}}


def _scim_out(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {_SCIM_JSON: {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


_SCIM_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["schemas", "status"],
        "description": "RFC 7644 §3.12 error response",
        "properties": {
            "schemas": {"type": "array", "items": {"const": _ERROR_SCHEMA_URN}},
            "status": {"type": "string", "pattern": "^[1-5][0-9][0-9]$"},
            "scimType": {"type": "string", "description": "one of " + ", ".join(_SCIM_TYPES) + " (or absent)"},
            "detail": {"type": "string"},
        },
    },
    "Meta": {"type": "object", "properties": {
        "resourceType": {"type": "string"}, "created": {"type": "string"}, "lastModified": {"type": "string"},
        "location": {"type": "string"}, "version": {"type": "string"}}},
    "MultiValued": {"type": "array", "items": {"type": "object", "properties": {
        "value": {}, "display": {"type": "string"}, "type": {"type": "string"}, "primary": {"type": "boolean"}}}},
    "User": {
        "type": "object", "required": ["schemas", "id"],  # attributes= may leave out all but id (RFC 7644 §3.9)
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "id": {"type": "string"}, "externalId": {"type": "string"}, "userName": {"type": "string"},
            "displayName": {"type": "string"}, "active": {"type": "boolean"},
            "name": {"type": "object"}, "emails": {"$ref": "#/components/schemas/MultiValued"},
            "groups": {"$ref": "#/components/schemas/MultiValued"}, "roles": {"$ref": "#/components/schemas/MultiValued"},
            "meta": {"$ref": "#/components/schemas/Meta"},
        },
        "description": "RFC 7643 §4.1 User (with the enterprise extension and a tenant's custom extensions)",
    },
    "UserWrite": {
        "type": "object", "required": ["schemas", "userName"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "userName": {"type": "string"},
                       "externalId": {"type": "string"}, "active": {"type": "boolean"}, "name": {"type": "object"},
                       "emails": {"$ref": "#/components/schemas/MultiValued"}},
    },
    "Group": {
        "type": "object", "required": ["schemas", "id"],
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "id": {"type": "string"}, "externalId": {"type": "string"}, "displayName": {"type": "string"},
            "members": {"$ref": "#/components/schemas/MultiValued"}, "meta": {"$ref": "#/components/schemas/Meta"},
        },
        "description": "RFC 7643 §4.2 Group",
    },
    "GroupWrite": {
        "type": "object", "required": ["schemas", "displayName"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "displayName": {"type": "string"},
                       "externalId": {"type": "string"}, "members": {"$ref": "#/components/schemas/MultiValued"}},
    },
    "ListResponse": {
        "type": "object", "required": ["schemas", "totalResults", "Resources"],
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "totalResults": {"type": "integer", "minimum": 0}, "startIndex": {"type": "integer", "minimum": 1},
            "itemsPerPage": {"type": "integer", "minimum": 0}, "nextCursor": {"type": "string"},
            "Resources": {"type": "array", "items": {"type": "object"}},
        },
    },
    "PatchOp": {
        "type": "object", "required": ["schemas", "Operations"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}},
                       "Operations": {"type": "array", "items": {"type": "object", "required": ["op"], "properties": {
                           "op": {"type": "string"}, "path": {"type": "string"}, "value": {}}}}},
    },
    "SearchRequest": {
        "type": "object",
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "filter": {"type": "string"},
                       "startIndex": {"type": "integer"}, "count": {"type": "integer"}, "sortBy": {"type": "string"},
                       "sortOrder": {"type": "string", "enum": ["ascending", "descending"]},
                       "attributes": {"type": "array", "items": {"type": "string"}},
                       "excludedAttributes": {"type": "array", "items": {"type": "string"}}},
    },
    "BulkRequest": {
        "type": "object", "required": ["schemas", "Operations"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "failOnErrors": {"type": "integer"},
                       "Operations": {"type": "array", "items": {"type": "object", "required": ["method"]}}},
    },
    "BulkResponse": {
        "type": "object", "required": ["schemas", "Operations"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}},
                       "Operations": {"type": "array", "items": {"type": "object"}}},
    },
    "Document": {"type": "object", "description": "A discovery document (RFC 7644 §4)"},
}


def _list_params() -> list[dict[str, Any]]:
    q = [("filter", {"type": "string"}, "RFC 7644 §3.4.2.2 filter"),
         ("startIndex", {"type": "integer"}, "1-based index of the first result"),
         ("count", {"type": "integer"}, "page size"),
         ("cursor", {"type": "string"}, "cursor pagination (RFC 9865)"),
         ("sortBy", {"type": "string"}, "attribute to sort by"),
         ("sortOrder", {"type": "string", "enum": ["ascending", "descending"]}, "sort direction"),
         ("attributes", {"type": "string"}, "comma-separated attributes to return"),
         ("excludedAttributes", {"type": "string"}, "comma-separated attributes to leave out")]
    return [{"name": n, "in": "query", "required": False, "schema": s, "description": d} for n, s, d in q]


def _proj_params() -> list[dict[str, Any]]:
    return [p for p in _list_params() if p["name"] in ("attributes", "excludedAttributes")]


def _resource_paths(name: str) -> dict[str, Any]:
    base = f"/{name}s"
    rid = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        base: {
            "get": {"operationId": f"list{name}s", "summary": f"List or filter {name}s", "parameters": _list_params(),
                    "responses": {"200": _scim_out("ListResponse", "a page of results")}},
            "post": {"operationId": f"create{name}", "summary": f"Create a {name}",
                     "requestBody": {"required": True, "content": _scim_body(f"{name}Write")},
                     "responses": {"201": _scim_out(name, "created")}},
        },
        base + "/{id}": {
            "parameters": [rid],
            "get": {"operationId": f"get{name}", "summary": f"Read a {name}", "parameters": _proj_params(),
                    "responses": {"200": _scim_out(name, "the resource"), "304": {"description": "If-None-Match matched"}}},
            "put": {"operationId": f"replace{name}", "summary": f"Replace a {name}",
                    "requestBody": {"required": True, "content": _scim_body(f"{name}Write")},
                    "responses": {"200": _scim_out(name, "replaced")}},
            "patch": {"operationId": f"patch{name}", "summary": f"Modify a {name} (RFC 7644 §3.5.2)",
                      "requestBody": {"required": True, "content": _scim_body("PatchOp")},
                      "responses": {"200": _scim_out(name, "modified"), "204": {"description": "modified"}}},
            "delete": {"operationId": f"delete{name}", "summary": f"Delete a {name}",
                       "responses": {"204": {"description": "deleted"}}},
        },
        base + "/.search": {
            "post": {"operationId": f"search{name}s", "summary": f"Search {name}s (RFC 7644 §3.4.3)",
                     "requestBody": {"required": True, "content": _scim_body("SearchRequest")},
                     "responses": {"200": _scim_out("ListResponse", "a page of results")}},
        },
    }


def scim_document() -> dict[str, Any]:
    """The SCIM endpoints' OpenAPI 3.1 document: one server per tenant, ``{tenant_id}`` in the server URL."""
    paths: dict[str, Any] = {**_resource_paths("User"), **_resource_paths("Group")}
    paths["/.search"] = {"post": {"operationId": "searchAll", "summary": "Search every resource type",
                                  "requestBody": {"required": True, "content": _scim_body("SearchRequest")},
                                  "responses": {"200": _scim_out("ListResponse", "a page of results")}}}
    paths["/Bulk"] = {"post": {"operationId": "bulk", "summary": "Several operations in one request (RFC 7644 §3.7)",
                               "requestBody": {"required": True, "content": _scim_body("BulkRequest")},
                               "responses": {"200": _scim_out("BulkResponse", "per-operation results")}}}
    for doc, op_id in (("ServiceProviderConfig", "getServiceProviderConfig"), ("ResourceTypes", "listResourceTypes"),
                       ("Schemas", "listSchemas")):
        paths["/" + doc] = {"get": {"operationId": op_id, "summary": f"Discovery: {doc}",
                                    "responses": {"200": _scim_out("Document", doc)}}}
    error = {"description": "Any failure: the RFC 7644 §3.12 error body",
             "content": {_SCIM_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for item in paths.values():
        for method, op in item.items():
            if method != "parameters":
                op["responses"]["default"] = error
    return {
        "openapi": "3.1.0",
        "info": {"title": "scim-gateway SCIM 2.0 endpoints", "version": _version(),
                 "description": "RFC 7643/7644 per tenant. Authenticate with a tenant API key as a bearer token. "
                                "Requests take application/scim+json or application/json; responses are "
                                "application/scim+json; every error is the RFC 7644 §3.12 error body."},
        "servers": [{"url": "/scim/v2/{tenant_id}", "variables": {"tenant_id": {"default": "tenant-id",
                                                                                "description": "the tenant's id"}}}],
        "security": [{"tenantApiKey": []}],
        "paths": paths,
        "components": {
            "schemas": _SCIM_SCHEMAS,
            "securitySchemes": {"tenantApiKey": {"type": "http", "scheme": "bearer",
                                                 "description": "A tenant API key (scimgw_...), from the admin API or CLI"}},
        },
    }


# --- serving them -------------------------------------------------------------------------------
_docs_key: web.AppKey[dict[str, bytes]] = web.AppKey("openapi_docs_key", dict)


async def _serve(request: web.Request) -> web.Response:
    body = request.app[_docs_key][request.path]
    return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-cache"})


def setup_routes(app: web.Application) -> None:
    """Serve both documents (public: they describe, they hold no data); built once per app."""
    app[_docs_key] = {ADMIN_DOC_PATH: orjson.dumps(admin_document()), SCIM_DOC_PATH: orjson.dumps(scim_document())}
    app.router.add_get(ADMIN_DOC_PATH, _serve)
    app.router.add_get(SCIM_DOC_PATH, _serve)
