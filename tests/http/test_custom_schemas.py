"""Per-tenant custom schema extensions, end to end over HTTP on SQLite and PostgreSQL.

Declared through the admin API, published in that tenant's /Schemas and /ResourceTypes only, validated
on write, stored, returned and projected, filtered and sorted in SQL, usable as the role mapping's
attribute, refused when the definition is invalid, and protected from deletion while in use.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway import hookimpl
from gateway.app import create_app
from gateway.settings import Settings
from gateway.testing import USER_SCHEMA, ScimClient, add_tenant

TOKEN = "adm_ext_test_" + "q" * 40
ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
BADGE = "urn:ietf:params:scim:schemas:extension:badge:2.0:Group"
POSTGRES_DSN = os.environ.get("SCIM_GATEWAY_TEST_POSTGRES")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_DSN else [])]

ACME_SCHEMA: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": ACME,
    "name": "AcmeUser",
    "description": "Acme's own user attributes",
    "attributes": [
        {"name": "accessLevel", "type": "string", "canonicalValues": ["gold", "silver", "bronze"]},
        {"name": "badgeNumber", "type": "integer"},
        {"name": "costCode", "type": "string", "caseExact": True},
        {"name": "contractor", "type": "boolean"},
        {"name": "hired", "type": "dateTime"},
        {"name": "pin", "type": "string", "mutability": "writeOnly"},
        {"name": "auditNote", "type": "string", "returned": "request"},
        {"name": "tier", "type": "string", "mutability": "readOnly"},
        {"name": "locker", "type": "complex", "subAttributes": [
            {"name": "building", "type": "string"}, {"name": "number", "type": "integer"}]},
        {"name": "skills", "type": "string", "multiValued": True},
    ],
}


class Api:
    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def __call__(self, method: str, path: str, body: Any = None, *, raw: str | None = None,
                       params: dict[str, str] | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        resp = await self.client.request(method, "/api/v1" + path, data=data, params=params,
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)

    async def declare(self, tenant_id: str, urn: str, schema: dict[str, Any]) -> dict[str, Any]:
        status, body = await self("PUT", f"/tenants/{tenant_id}/schemas/{urn}", schema)
        assert status in (200, 201), (status, body)
        return body  # type: ignore[no-any-return]


def _app(backend: str, tmp_path: Path, schema: str, *, owner: bool = True) -> web.Application:
    settings = Settings(database=str(tmp_path / "ext.db") if backend == "sqlite" else str(POSTGRES_DSN),
                        public_url="https://scim.example.test", admin_token=TOKEN)
    store = None
    if backend == "postgres":
        from gateway.store.postgres import PostgresStore

        store = PostgresStore(str(POSTGRES_DSN), schema=schema, drop_schema_on_close=owner)
    return create_app(settings, store=store)


@pytest.fixture(params=BACKENDS)
def backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def pg_schema() -> str:
    return f"ext_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def gateway_app(backend: str, tmp_path: Path, pg_schema: str) -> web.Application:
    return _app(backend, tmp_path, pg_schema)


@pytest.fixture
async def api(scim: ScimClient) -> Api:
    return Api(scim.client)


@pytest.fixture
async def acme(scim: ScimClient, api: Api) -> ScimClient:
    """``scim``'s tenant with the Acme user extension declared."""
    await api.declare(scim.tenant.id, ACME, ACME_SCHEMA)
    return scim


def user(name: str, ext: dict[str, Any] | None = None, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER_SCHEMA, *([ACME] if ext is not None else [])], "userName": name, **attrs}
    if ext is not None:
        body[ACME] = ext
    return body


# -- declare, read back, list -----------------------------------------------------------------------
async def test_declare_fills_rfc_defaults_and_reads_back(scim: ScimClient, api: Api) -> None:
    status, view = await api("PUT", f"/tenants/{scim.tenant.id}/schemas/{ACME}", ACME_SCHEMA)
    assert status == 201
    assert view["id"] == ACME and view["resourceType"] == "User" and view["required"] is False
    level = view["attributes"][0]
    assert level == {"name": "accessLevel", "type": "string", "multiValued": False, "required": False,
                     "canonicalValues": ["gold", "silver", "bronze"], "caseExact": False, "mutability": "readWrite",
                     "returned": "default", "uniqueness": "none"}
    pin = next(a for a in view["attributes"] if a["name"] == "pin")
    assert pin["returned"] == "never"  # writeOnly is never returned (RFC 7643 §7)
    assert view["meta"]["location"].endswith(f"/scim/v2/{scim.tenant.id}/Schemas/{ACME}")
    status, again = await api("GET", f"/tenants/{scim.tenant.id}/schemas/{ACME.upper()}")
    assert status == 200 and again["attributes"] == view["attributes"]
    # a GET result can be PUT back unchanged (meta is readOnly and ignored): a replace answers 200
    status, replaced = await api("PUT", f"/tenants/{scim.tenant.id}/schemas/{ACME}", again)
    assert status == 200 and replaced["attributes"] == view["attributes"] and replaced["meta"]["created"] == view["meta"]["created"]
    status, listed = await api("GET", f"/tenants/{scim.tenant.id}/schemas")
    assert status == 200 and [s["id"] for s in listed["schemas"]] == [ACME]
    status, missing = await api("GET", f"/tenants/{scim.tenant.id}/schemas/urn:acme:nothing:User")
    assert status == 404 and missing["error"] == "not_found"
    status, body = await api("GET", "/tenants/no-such-tenant/schemas")
    assert status == 404


# -- discovery, per tenant --------------------------------------------------------------------------
async def test_declared_extension_is_published_to_its_tenant_only(acme: ScimClient) -> None:
    other = await acme.other_tenant("Other")
    status, schemas, _ = await acme.get("/Schemas")
    ids = [s["id"] for s in schemas["Resources"]]
    assert status == 200 and ACME in ids and schemas["totalResults"] == len(ids) == 4
    status, one, _ = await acme.get(f"/Schemas/{ACME}")
    assert status == 200 and one["meta"]["location"].endswith(f"/Schemas/{ACME}")
    assert {a["name"] for a in one["attributes"]} >= {"accessLevel", "locker", "skills"}
    status, rt, _ = await acme.get("/ResourceTypes/User")
    assert {"schema": ACME, "required": False} in rt["schemaExtensions"]
    # the other tenant sees nothing of it
    status, schemas, _ = await other.get("/Schemas")
    assert ACME not in [s["id"] for s in schemas["Resources"]] and schemas["totalResults"] == 3
    status, body, _ = await other.get(f"/Schemas/{ACME}")
    assert status == 404
    status, rt, _ = await other.get("/ResourceTypes/User")
    assert [e["schema"] for e in rt["schemaExtensions"]] == ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]


async def test_group_extension_is_listed_on_the_group_resource_type(scim: ScimClient, api: Api) -> None:
    await api.declare(scim.tenant.id, BADGE, {"attributes": [{"name": "color", "type": "string"}]})
    _, rt, _ = await scim.get("/ResourceTypes/Group")
    assert rt["schemaExtensions"] == [{"schema": BADGE, "required": False}]
    _, rt, _ = await scim.get("/ResourceTypes/User")
    assert BADGE not in [e["schema"] for e in rt["schemaExtensions"]]
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", BADGE], "displayName": "Crew", BADGE: {"color": "red"}}
    status, group, _ = await scim.post("/Groups", body)
    assert status == 201 and group[BADGE] == {"color": "red"} and BADGE in group["schemas"]
    status, found, _ = await scim.get("/Groups", params={"filter": f'{BADGE}:color eq "RED"'})
    assert found["totalResults"] == 1


# -- write validation ---------------------------------------------------------------------------------
async def test_write_stores_and_returns_typed_values(acme: ScimClient) -> None:
    ext = {"accessLevel": "gold", "badgeNumber": 42, "costCode": "CC-1", "contractor": False,
           "hired": "2024-02-01T09:00:00Z", "pin": "1234", "auditNote": "checked", "tier": "platinum",
           "locker": {"building": "B2", "number": 7, "colour": "x"}, "skills": ["forklift", "first aid"],
           "shoeSize": 44}
    status, doc, _ = await acme.post("/Users", user("ann", ext))
    assert status == 201, doc
    got = doc[ACME]
    assert got == {"accessLevel": "gold", "badgeNumber": 42, "costCode": "CC-1", "contractor": False,
                   "hired": "2024-02-01T09:00:00Z", "locker": {"building": "B2", "number": 7},
                   "skills": ["forklift", "first aid"]}  # pin never returned, auditNote on request, tier readOnly
    assert ACME in doc["schemas"]
    status, fetched, _ = await acme.get(f"/Users/{doc['id']}")
    assert fetched[ACME] == got
    # the flat "urn:...:User:attr" form (Entra's) and case-insensitive attribute names land in the same place
    status, doc2, _ = await acme.post("/Users", {"schemas": [USER_SCHEMA, ACME], "userName": "bob",
                                                 f"{ACME}:ACCESSLEVEL": "silver", f"{ACME}:badgeNumber": 7})
    assert status == 201 and doc2[ACME] == {"accessLevel": "silver", "badgeNumber": 7}


@pytest.mark.parametrize(("ext", "fragment"), [
    ({"badgeNumber": "42"}, f"'{ACME}:badgeNumber' must be an integer"),
    ({"contractor": "True"}, "must be a JSON boolean"),
    ({"hired": "yesterday"}, "xsd:dateTime"),
    ({"skills": "forklift"}, "must be an array"),
    ({"accessLevel": ["gold"]}, "must be a single value"),
    ({"locker": "B2"}, "is complex"),
    ({"locker": {"number": "seven"}}, "locker.number' must be an integer"),
])
async def test_write_refuses_values_of_the_wrong_type(acme: ScimClient, ext: dict[str, Any], fragment: str) -> None:
    status, body, _ = await acme.post("/Users", user("carl", ext))
    assert status == 400 and body["scimType"] == "invalidValue" and fragment in body["detail"], body
    status, page, _ = await acme.get("/Users", params={"filter": 'userName eq "carl"'})
    assert page["totalResults"] == 0


async def test_patch_validates_and_updates_extension_attributes(acme: ScimClient) -> None:
    doc = await acme.create_user("dora", **{"schemas": [USER_SCHEMA, ACME], ACME: {"accessLevel": "bronze"}})
    status, body, _ = await acme.patch(f"/Users/{doc['id']}", [{"op": "replace", "path": f"{ACME}:badgeNumber", "value": "x"}])
    assert status == 400 and "must be an integer" in body["detail"]
    status, body, _ = await acme.patch(f"/Users/{doc['id']}", [
        {"op": "replace", "path": f"{ACME}:badgeNumber", "value": 9},
        {"op": "add", "path": f"{ACME}:skills", "value": ["welding"]},
        {"op": "replace", "path": f"{ACME}:locker.building", "value": "C"},
        {"op": "replace", "value": {f"{ACME}:accessLevel": "gold"}},
    ])
    assert status == 200, body
    assert body[ACME] == {"accessLevel": "gold", "badgeNumber": 9, "skills": ["welding"], "locker": {"building": "C"}}
    status, body, _ = await acme.patch(f"/Users/{doc['id']}", [{"op": "remove", "path": ACME}])
    assert status == 200 and ACME not in body and ACME not in body["schemas"]


async def test_required_extension_and_required_attribute(scim: ScimClient, api: Api) -> None:
    await api.declare(scim.tenant.id, ACME, {"required": True, "attributes": [
        {"name": "accessLevel", "required": True}, {"name": "badgeNumber", "type": "integer"}]})
    status, body, _ = await scim.post("/Users", user("eve"))
    assert status == 400 and "required extension" in body["detail"]
    status, body, _ = await scim.post("/Users", user("eve", {"badgeNumber": 1}))
    assert status == 400 and f"'{ACME}:accessLevel' is required" in body["detail"]
    status, body, _ = await scim.post("/Users", user("eve", {"accessLevel": "gold"}))
    assert status == 201
    _, rt, _ = await scim.get("/ResourceTypes/User")
    assert {"schema": ACME, "required": True} in rt["schemaExtensions"]


async def test_required_attribute_of_an_optional_extension_binds_only_when_present(scim: ScimClient, api: Api) -> None:
    await api.declare(scim.tenant.id, ACME, {"attributes": [{"name": "accessLevel", "required": True},
                                                            {"name": "badgeNumber", "type": "integer"}]})
    status, _, _ = await scim.post("/Users", user("fay"))
    assert status == 201  # the extension is optional: a user without it is fine
    status, body, _ = await scim.post("/Users", user("gus", {"badgeNumber": 3}))
    assert status == 400 and "is required" in body["detail"]


async def test_unique_attribute_is_enforced_within_the_tenant(scim: ScimClient, api: Api) -> None:
    await api.declare(scim.tenant.id, ACME, {"attributes": [{"name": "badgeNumber", "type": "integer", "uniqueness": "server"},
                                                            {"name": "email2", "uniqueness": "server"}]})
    first = await scim.create_user("u1", **{"schemas": [USER_SCHEMA, ACME], ACME: {"badgeNumber": 5, "email2": "A@x"}})
    status, body, _ = await scim.post("/Users", user("u2", {"badgeNumber": 5}))
    assert status == 409 and body["scimType"] == "uniqueness" and "badgeNumber" in body["detail"]
    status, body, _ = await scim.post("/Users", user("u2", {"email2": "a@X"}))
    assert status == 409, body  # caseExact false: compared case-insensitively
    second = await scim.create_user("u2", **{"schemas": [USER_SCHEMA, ACME], ACME: {"badgeNumber": 6}})
    status, body, _ = await scim.patch(f"/Users/{second['id']}", [{"op": "replace", "path": f"{ACME}:badgeNumber", "value": 5}])
    assert status == 409
    # a resource keeping its own value is no conflict
    status, body, _ = await scim.put(f"/Users/{first['id']}", user("u1", {"badgeNumber": 5, "email2": "A@x"}))
    assert status == 200, body
    other = await scim.other_tenant("Other")
    await api.declare(other.tenant.id, ACME, {"attributes": [{"name": "badgeNumber", "type": "integer", "uniqueness": "server"}]})
    status, _, _ = await other.post("/Users", user("u9", {"badgeNumber": 5}))
    assert status == 201  # another tenant's values never conflict (nor leak)


# -- read: projection -------------------------------------------------------------------------------
async def test_projection_of_extension_attributes(acme: ScimClient) -> None:
    doc = await acme.create_user("hal", **{"schemas": [USER_SCHEMA, ACME],
                                           ACME: {"accessLevel": "gold", "badgeNumber": 1, "auditNote": "n", "pin": "9"}})
    uid = doc["id"]
    _, got, _ = await acme.get(f"/Users/{uid}", params={"attributes": f"{ACME}:accessLevel"})
    assert got[ACME] == {"accessLevel": "gold"} and "userName" not in got and ACME in got["schemas"]
    _, got, _ = await acme.get(f"/Users/{uid}", params={"attributes": f"{ACME}:auditNote"})
    assert got[ACME] == {"auditNote": "n"}  # returned "request": only when asked for
    _, got, _ = await acme.get(f"/Users/{uid}", params={"attributes": f"{ACME}:pin"})
    assert ACME not in got  # writeOnly: never
    _, got, _ = await acme.get(f"/Users/{uid}", params={"excludedAttributes": f"{ACME}:badgeNumber"})
    assert got[ACME] == {"accessLevel": "gold"} and got["userName"] == "hal"
    _, got, _ = await acme.get(f"/Users/{uid}", params={"excludedAttributes": ACME})
    assert ACME not in got and ACME not in got["schemas"]
    _, page, _ = await acme.get("/Users", params={"attributes": "accessLevel"})  # unqualified: one extension defines it
    assert page["Resources"][0][ACME] == {"accessLevel": "gold"}


# -- filter and sort, compiled to SQL --------------------------------------------------------------------
@pytest.fixture
async def people(acme: ScimClient) -> ScimClient:
    for name, ext in [("p1", {"accessLevel": "Gold", "badgeNumber": 30, "costCode": "AB", "contractor": True,
                              "hired": "2020-01-01T00:00:00Z", "skills": ["java", "go"], "locker": {"building": "B1"}}),
                      ("p2", {"accessLevel": "silver", "badgeNumber": 10, "costCode": "ab", "contractor": False,
                              "hired": "2022-06-01T00:00:00Z", "skills": ["python"]}),
                      ("p3", {"accessLevel": "bronze", "badgeNumber": 20, "hired": "2021-03-01T00:00:00Z"}),
                      ("p4", None)]:
        status, body, _ = await acme.post("/Users", user(name, ext))
        assert status == 201, body
    return acme


async def names(client: ScimClient, **params: str) -> list[str]:
    status, page, _ = await client.get("/Users", params=params)
    assert status == 200, page
    return [r["userName"] for r in page["Resources"]]


@pytest.mark.parametrize(("flt", "expected"), [
    (f'{ACME}:accessLevel eq "gold"', ["p1"]),  # caseExact false
    ('accessLevel eq "GOLD"', ["p1"]),  # unqualified name of the only extension defining it
    (f'{ACME}:costCode eq "AB"', ["p1"]),  # caseExact true
    (f"{ACME}:badgeNumber gt 15", ["p1", "p3"]),
    (f"{ACME}:badgeNumber le 20 and {ACME}:contractor eq false", ["p2"]),
    (f"{ACME}:contractor eq true", ["p1"]),
    (f'{ACME}:hired ge "2021-01-01T00:00:00Z"', ["p2", "p3"]),
    (f'{ACME}:skills co "th"', ["p2"]),
    (f'{ACME}:skills eq "go"', ["p1"]),
    (f'{ACME}:locker.building sw "b"', ["p1"]),
    (f"{ACME}:accessLevel pr", ["p1", "p2", "p3"]),
    (f"not ({ACME}:accessLevel pr)", ["p4"]),
    (f'{ACME}:accessLevel ne "silver"', ["p1", "p3", "p4"]),
    (f'schemas eq "{ACME}"', ["p1", "p2", "p3"]),
])
async def test_filter_on_extension_attributes(people: ScimClient, flt: str, expected: list[str]) -> None:
    assert await names(people, filter=flt) == expected
    status, page, _ = await people.post("/Users/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": flt})
    assert [r["userName"] for r in page["Resources"]] == expected


async def test_sort_by_extension_attributes(people: ScimClient) -> None:
    assert await names(people, sortBy=f"{ACME}:badgeNumber") == ["p2", "p3", "p1", "p4"]
    assert await names(people, sortBy=f"{ACME}:badgeNumber", sortOrder="descending") == ["p4", "p1", "p3", "p2"]
    assert await names(people, sortBy="accessLevel") == ["p3", "p1", "p2", "p4"]  # case-insensitive
    assert await names(people, sortBy=f"{ACME}:hired", filter=f"{ACME}:hired pr") == ["p1", "p3", "p2"]
    assert await names(people, sortBy=f"{ACME}:skills") == ["p1", "p2", "p3", "p4"]  # first value: java < python


async def test_filter_type_mismatch_is_invalid_filter(people: ScimClient) -> None:
    status, body, _ = await people.get("/Users", params={"filter": f'{ACME}:badgeNumber gt "x"'})
    assert status == 400 and body["scimType"] == "invalidFilter"


# -- undeclared extensions keep today's behaviour; ignored attributes are recorded --------------------
async def test_undeclared_extension_is_stored_opaquely_and_ignored_attributes_are_logged(scim: ScimClient, api: Api) -> None:
    other = "urn:ietf:params:scim:schemas:extension:other:2.0:User"
    status, doc, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA, other], "userName": "ivy", other: {"anything": "1"}})
    assert status == 201 and doc[other] == {"anything": "1"}
    await api.declare(scim.tenant.id, ACME, {"attributes": [{"name": "accessLevel"}]})
    status, doc, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA, ACME], "userName": "jon", "nickname": "J",
                                                "favouriteColour": "teal",
                                                ACME: {"accessLevel": "gold", "shoeSize": 44}})
    assert status == 201 and doc[ACME] == {"accessLevel": "gold"}
    status, body, _ = await scim.patch(f"/Users/{doc['id']}", [{"op": "add", "value": {"mood": "calm", "nickName": "Jo"}}])
    assert status == 200 and body["nickName"] == "Jo"
    status, events = await api("GET", f"/tenants/{scim.tenant.id}/activity", params={"type": "scim_provision"})
    by_action = {e["action"]: e for e in events["events"] if e.get("userName") == "jon"}
    assert by_action["created"]["ignored_attributes"] == ["favouriteColour", f"{ACME}:shoeSize"]
    assert by_action["updated"]["ignored_attributes"] == ["mood"]
    ivy = [e for e in events["events"] if e.get("userName") == "ivy"]
    assert "ignored_attributes" not in ivy[0]


async def test_write_only_values_are_redacted_in_the_debug_activity_log(acme: ScimClient, api: Api) -> None:
    await api("PATCH", f"/tenants/{acme.tenant.id}", {"log_successful_events": True})
    status, doc, _ = await acme.post("/Users", user("pia", {"pin": "4711", "accessLevel": "gold"}))
    assert status == 201 and "pin" not in doc[ACME]
    await acme.patch(f"/Users/{doc['id']}", [{"op": "replace", "path": f"{ACME}:pin", "value": "4712"}])
    _, events = await api("GET", f"/tenants/{acme.tenant.id}/activity", params={"type": "scim_read"})
    text = json.dumps(events)
    assert "4711" not in text and "4712" not in text and "gold" in text and "[redacted]" in text


# -- role mapping from an extension attribute ----------------------------------------------------------
async def test_role_mapping_from_an_extension_attribute(acme: ScimClient, api: Api) -> None:
    mapping = {"source": "idp_attribute", "attribute": f"{ACME}:accessLevel",
               "attribute_values": {"gold": ["admin", "viewer"], "silver": "viewer"}, "default_roles": ["guest"]}
    status, body = await api("PATCH", f"/tenants/{acme.tenant.id}", {"role_mapping": mapping})
    assert status == 200, body
    doc = await acme.create_user("kim", **{"schemas": [USER_SCHEMA, ACME], ACME: {"accessLevel": "GOLD"}})

    async def roles_of(uid: str) -> list[str]:
        _, page = await api("GET", f"/tenants/{acme.tenant.id}/users")
        return next(u["roles"] for u in page["users"] if u["id"] == uid)  # type: ignore[no-any-return]

    assert await roles_of(doc["id"]) == ["admin", "viewer"]
    await acme.patch(f"/Users/{doc['id']}", [{"op": "replace", "path": f"{ACME}:accessLevel", "value": "silver"}])
    assert await roles_of(doc["id"]) == ["viewer"]
    await acme.patch(f"/Users/{doc['id']}", [{"op": "remove", "path": f"{ACME}:accessLevel"}])
    assert await roles_of(doc["id"]) == ["guest"]


# -- changes carry the extension --------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.changes: list[Any] = []

    @hookimpl
    def scim_resource_changed(self, client: Any, change: Any) -> None:
        self.changes.append(change)


async def test_changes_carry_extension_values(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]], tmp_path: Path
) -> None:
    recorder = Recorder()
    settings = Settings(database=str(tmp_path / "ev.db"), public_url="https://scim.example.test", admin_token=TOKEN)
    client = await aiohttp_client(create_app(settings, plugins=[("recorder", recorder)]))
    tenant, key = await add_tenant(client.app, "Events")
    scim, api = ScimClient(client, tenant, key), Api(client)
    await api.declare(tenant.id, ACME, ACME_SCHEMA)
    doc = await scim.create_user("lee", **{"schemas": [USER_SCHEMA, ACME], ACME: {"accessLevel": "gold", "pin": "s3cr3t"}})
    status, body, _ = await scim.patch(f"/Users/{doc['id']}", [{"op": "replace", "path": f"{ACME}:pin", "value": 7}])
    assert status == 400 and "must be a string" in body["detail"]  # writeOnly values are still validated
    await scim.patch(f"/Users/{doc['id']}", [{"op": "replace", "path": f"{ACME}:pin", "value": "0000"},
                                             {"op": "add", "path": f"{ACME}:badgeNumber", "value": 3}])
    created, updated = recorder.changes[-2:]
    assert created.resource[ACME] == {"accessLevel": "gold"} and updated.resource[ACME] == {"accessLevel": "gold", "badgeNumber": 3}
    status, feed = await api("GET", f"/tenants/{tenant.id}/events")
    assert status == 200, feed
    events = {e["type"]: e for e in feed["data"]}
    assert events["user.created"]["data"]["resource"][ACME] == {"accessLevel": "gold"}
    assert events["user.updated"]["data"]["resource"][ACME]["badgeNumber"] == 3
    # a writeOnly value is never stored, so no event, log or response can carry it
    assert "s3cr3t" not in json.dumps(feed) and "0000" not in json.dumps(feed)


# -- delete ------------------------------------------------------------------------------------------
async def test_delete_is_refused_while_resources_carry_values_unless_forced(acme: ScimClient, api: Api) -> None:
    doc = await acme.create_user("max", **{"schemas": [USER_SCHEMA, ACME], ACME: {"accessLevel": "gold"}})
    path = f"/tenants/{acme.tenant.id}/schemas/{ACME}"
    status, body = await api("DELETE", path)
    assert status == 409 and body["error"] == "schema_in_use" and "1 User resource(s)" in body["detail"]
    status, body = await api("DELETE", path, params={"force": "maybe"})
    assert status == 400
    _, schemas, _ = await acme.get("/Schemas")
    assert ACME in [s["id"] for s in schemas["Resources"]]
    status, _ = await api("DELETE", path, params={"force": "true"})
    assert status == 204
    _, schemas, _ = await acme.get("/Schemas")
    assert ACME not in [s["id"] for s in schemas["Resources"]]
    # the values stay, as an undeclared extension's do
    _, got, _ = await acme.get(f"/Users/{doc['id']}")
    assert got[ACME] == {"accessLevel": "gold"}
    status, _ = await api("DELETE", path)
    assert status == 404


async def test_delete_of_an_unused_declaration(acme: ScimClient, api: Api) -> None:
    doc = await acme.create_user("ned", **{"schemas": [USER_SCHEMA, ACME], ACME: {"accessLevel": "gold"}})
    await acme.patch(f"/Users/{doc['id']}", [{"op": "remove", "path": f"{ACME}:accessLevel"}])
    status, _ = await api("DELETE", f"/tenants/{acme.tenant.id}/schemas/{ACME}")
    assert status == 204
    status, body, _ = await acme.post("/Users", user("ola", {"badgeNumber": "not checked any more"}))
    assert status == 201 and body[ACME] == {"badgeNumber": "not checked any more"}


# -- invalid definitions ------------------------------------------------------------------------------
def _with(attr: dict[str, Any]) -> dict[str, Any]:
    return {"attributes": [attr]}


@pytest.mark.parametrize(("urn", "schema", "code", "fragment"), [
    (ACME, {"attributes": []}, "validation_error", "attributes: List should have at least 1 item"),
    (ACME, {}, "validation_error", "attributes: Field required"),
    (ACME, _with({"name": "x", "type": "text"}), "validation_error", "attributes.0.type: Input should be 'string'"),
    (ACME, _with({"name": "x", "multiValued": "yes"}), "validation_error", "attributes.0.multiValued"),
    (ACME, _with({"name": "x", "multivalued": True}), "validation_error", "attributes.0.multivalued: Extra inputs"),
    (ACME, _with({"name": "x", "mutability": "sometimes"}), "validation_error", "attributes.0.mutability"),
    (ACME, _with({"name": "x", "returned": "maybe"}), "validation_error", "attributes.0.returned"),
    (ACME, _with({"name": "x", "uniqueness": "unique"}), "validation_error", "attributes.0.uniqueness"),
    (ACME, _with({"name": "2fast"}), "invalid_schema", "attributes[0].name: '2fast' is not an attribute name"),
    (ACME, _with({"name": "a.b"}), "invalid_schema", "is not an attribute name"),
    (ACME, _with({"name": "c", "type": "complex"}), "invalid_schema", "needs at least one sub-attribute"),
    (ACME, _with({"name": "c", "type": "complex", "subAttributes": [
        {"name": "d", "type": "complex", "subAttributes": [{"name": "e"}]}]}), "invalid_schema",
     "attributes[0].subAttributes[0].type: a sub-attribute cannot be complex"),
    (ACME, _with({"name": "s", "subAttributes": [{"name": "t"}]}), "invalid_schema", "only a complex attribute"),
    (ACME, {"attributes": [{"name": "dup"}, {"name": "DUP"}]}, "invalid_schema", "attributes[1].name: 'DUP' repeats"),
    (ACME, _with({"name": "p", "mutability": "writeOnly", "returned": "always"}), "invalid_schema", "never returned"),
    (ACME, _with({"name": "r", "required": True, "mutability": "readOnly"}), "invalid_schema", "cannot be required"),
    (ACME, _with({"name": "n", "type": "integer", "canonicalValues": ["one"]}), "invalid_schema", "canonicalValues[0]"),
    (ACME, _with({"name": "b", "type": "boolean", "canonicalValues": [True]}), "invalid_schema", "not allowed"),
    (ACME, _with({"name": "u", "type": "boolean", "uniqueness": "server"}), "invalid_schema", "can be unique"),
    (ACME, _with({"name": "x", "referenceTypes": ["User"]}), "invalid_schema", "only for type 'reference'"),
    (ACME, {"id": "urn:other", "attributes": [{"name": "x"}]}, "invalid_schema", "differs from the URN in the path"),
    (ACME, {"schemas": ["urn:wrong"], "attributes": [{"name": "x"}]}, "invalid_schema", "schemas: must be"),
    (ACME, {"attributes": [{"name": "x"}], "colour": "red"}, "validation_error", "colour: Extra inputs"),
    ("urn:ietf:params:scim:schemas:core:2.0:User", _with({"name": "x"}), "invalid_schema", "defines itself"),
    ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", _with({"name": "x"}), "invalid_schema", "defines itself"),
    ("not-a-urn", _with({"name": "x"}), "invalid_schema", "is not a usable schema URN"),
    ("urn:acme:it's:User", _with({"name": "x"}), "invalid_schema", "is not a usable schema URN"),
    ("urn:acme:profile", _with({"name": "x"}), "invalid_schema", "resourceType: say which resource type"),
    ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:more:User", _with({"name": "x"}), "schema_conflict",
     "nest inside each other"),
])
async def test_invalid_definitions_are_refused_with_clear_errors(
    scim: ScimClient, api: Api, urn: str, schema: dict[str, Any], code: str, fragment: str
) -> None:
    status, body = await api("PUT", f"/tenants/{scim.tenant.id}/schemas/{urn}", schema)
    assert status in (400, 409) and body["error"] == code and fragment in body["detail"], body
    status, listed = await api("GET", f"/tenants/{scim.tenant.id}/schemas")
    assert listed["schemas"] == []


async def test_every_problem_is_named_at_once_and_bad_json_is_400(scim: ScimClient, api: Api) -> None:
    status, body = await api("PUT", f"/tenants/{scim.tenant.id}/schemas/{ACME}",
                             {"attributes": [{"name": "1a"}, {"name": "c", "type": "complex"}]})
    assert status == 400 and "attributes[0].name" in body["detail"] and "attributes[1].subAttributes" in body["detail"]
    status, body = await api("PUT", f"/tenants/{scim.tenant.id}/schemas/{ACME}", raw="{not json")
    assert status == 400 and set(body) == {"error", "detail"}
    status, body = await api("PUT", f"/tenants/{scim.tenant.id}/schemas/{ACME}", raw="")
    assert status == 400 and body["error"] == "invalid_json"
    status, body = await api("PUT", f"/tenants/no-such-tenant/schemas/{ACME}", _with({"name": "x"}))
    assert status == 404


async def test_nested_urns_of_declared_extensions_conflict(scim: ScimClient, api: Api) -> None:
    await api.declare(scim.tenant.id, ACME, _with({"name": "x"}))
    status, body = await api("PUT", f"/tenants/{scim.tenant.id}/schemas/{ACME}:sub:User", _with({"name": "y"}))
    assert status == 409 and body["error"] == "schema_conflict"


# -- the cache follows changes made by another process -------------------------------------------------
@pytest.fixture
async def two_processes(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]], backend: str, tmp_path: Path,
    pg_schema: str,
) -> AsyncIterator[tuple[ScimClient, ScimClient, Api]]:
    first = await aiohttp_client(_app(backend, tmp_path, pg_schema, owner=True))
    second = await aiohttp_client(_app(backend, tmp_path, pg_schema, owner=False))
    tenant, key = await add_tenant(first.app, "Shared")
    yield ScimClient(first, tenant, key), ScimClient(second, tenant, key), Api(first)


async def test_declarations_reach_every_process_through_the_tenant_row(
    two_processes: tuple[ScimClient, ScimClient, Api],
) -> None:
    one, two, api = two_processes
    _, schemas, _ = await two.get("/Schemas")  # warm the second process's cache
    assert ACME not in [s["id"] for s in schemas["Resources"]]
    await api.declare(one.tenant.id, ACME, _with({"name": "badgeNumber", "type": "integer"}))
    _, schemas, _ = await two.get("/Schemas")
    assert ACME in [s["id"] for s in schemas["Resources"]]
    status, body, _ = await two.post("/Users", user("pam", {"badgeNumber": "x"}))
    assert status == 400  # validated by the second process with the new declaration
    await api.declare(one.tenant.id, ACME, _with({"name": "badgeNumber", "type": "string"}))
    status, body, _ = await two.post("/Users", user("pam", {"badgeNumber": "x"}))
    assert status == 201
    status, _ = await api("DELETE", f"/tenants/{one.tenant.id}/schemas/{ACME}", params={"force": "true"})
    _, schemas, _ = await two.get("/Schemas")
    assert ACME not in [s["id"] for s in schemas["Resources"]]


async def test_unique_values_hold_under_concurrent_writers_in_two_processes(
    two_processes: tuple[ScimClient, ScimClient, Api],
) -> None:
    one, two, api = two_processes
    await api.declare(one.tenant.id, ACME, _with({"name": "badgeNumber", "type": "integer", "uniqueness": "server"}))
    results = await asyncio.gather(*[(one if i % 2 else two).post("/Users", user(f"c{i}", {"badgeNumber": 77}))
                                     for i in range(6)])
    assert sorted(r[0] for r in results) == [201, 409, 409, 409, 409, 409], [r[1] for r in results]
    _, page, _ = await one.get("/Users", params={"filter": f"{ACME}:badgeNumber eq 77"})
    assert page["totalResults"] == 1


async def test_a_required_extension_cannot_be_patched_away(scim: ScimClient, api: Api) -> None:
    await api.declare(scim.tenant.id, ACME, {"required": True, "attributes": [{"name": "accessLevel"}]})
    doc = await scim.create_user("rex", **{"schemas": [USER_SCHEMA, ACME], ACME: {"accessLevel": "gold"}})
    status, body, _ = await scim.patch(f"/Users/{doc['id']}", [{"op": "remove", "path": ACME}])
    assert status == 400 and body["scimType"] == "mutability" and "required extension" in body["detail"]
