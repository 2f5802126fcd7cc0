"""Users over HTTP, end to end against a live gateway on a real SQLite file (RFC 7644 §3)."""

from __future__ import annotations

from typing import Any

from gateway.testing import USER_SCHEMA, ScimClient

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def alice(**extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": "Alice@Example.com",
        "externalId": "ext-alice",
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"value": "alice@example.com", "type": "work", "primary": True}],
        "active": True,
        **extra,
    }


async def test_users_create_returns_201_with_meta_location_and_etag(scim: ScimClient) -> None:
    status, doc, resp = await scim.post("/Users", alice(password="s3cret-Passw0rd"))
    assert status == 201
    assert resp.headers["Content-Type"].startswith("application/scim+json")
    uid = doc["id"]
    assert doc["userName"] == "Alice@Example.com" and doc["schemas"] == [USER_SCHEMA]
    assert "password" not in doc
    meta = doc["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"] == f"https://scim.example.test/scim/v2/{scim.tenant.id}/Users/{uid}"
    assert resp.headers["Location"] == meta["location"]
    assert meta["version"] == resp.headers["ETag"] == 'W/"1"'
    assert meta["created"] == meta["lastModified"]


async def test_users_password_never_stored_or_returned(scim: ScimClient) -> None:
    secret = "Sup3r-Secret-Value!"
    doc = await scim.create_user("pw@example.com", password=secret)
    status, got, _ = await scim.get(f"/Users/{doc['id']}", params={"attributes": "password"})
    assert status == 200 and "password" not in got
    import sqlite3

    raw = sqlite3.connect(scim.gateway.settings.database).execute("SELECT data FROM users").fetchall()
    assert secret not in str(raw)


async def test_users_get_by_id_and_404_after_delete(scim: ScimClient) -> None:
    doc = await scim.create_user("bob@example.com")
    status, got, _ = await scim.get(f"/Users/{doc['id']}")
    assert status == 200 and got["id"] == doc["id"] and got["userName"] == "bob@example.com"
    status, _, _ = await scim.delete(f"/Users/{doc['id']}")
    assert status == 204
    status, err, _ = await scim.get(f"/Users/{doc['id']}")
    assert status == 404 and err["status"] == "404" and "urn:ietf:params:scim:api:messages:2.0:Error" in err["schemas"]


async def test_users_duplicate_user_name_any_case_is_409_uniqueness(scim: ScimClient) -> None:
    await scim.create_user("Carol@Example.com")
    status, err, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "carol@EXAMPLE.com"})
    assert status == 409 and err["scimType"] == "uniqueness" and err["status"] == "409"


async def test_users_filter_user_name_eq_is_case_insensitive(scim: ScimClient) -> None:
    doc = await scim.create_user("Dave.Smith@Example.com")
    await scim.create_user("someone-else@example.com")
    status, body, _ = await scim.get("/Users", params={"filter": 'userName eq "dave.smith@example.COM"',
                                                       "startIndex": "1", "count": "100"})
    assert status == 200
    assert body["totalResults"] == 1 and body["itemsPerPage"] == 1 and body["startIndex"] == 1
    assert [r["id"] for r in body["Resources"]] == [doc["id"]]
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]


async def test_users_empty_filter_result_is_200_with_zero(scim: ScimClient) -> None:
    status, body, _ = await scim.get("/Users", params={"filter": 'userName eq "3b6f1e0e-0000-4b0b-9d0c-000000000000"'})
    assert status == 200 and body["totalResults"] == 0 and body["Resources"] == []


async def test_users_filter_external_id_and_conjunction(scim: ScimClient) -> None:
    a = await scim.create_user("e1@example.com", externalId="X1", displayName="Eve One")
    await scim.create_user("e2@example.com", externalId="X2", displayName="Eve Two")
    status, body, _ = await scim.get("/Users", params={"filter": 'externalId eq "X1" and displayName eq "eve one"'})
    assert status == 200 and [r["id"] for r in body["Resources"]] == [a["id"]]
    status, body, _ = await scim.get("/Users", params={"filter": f'id eq "{a["id"]}"'})
    assert [r["id"] for r in body["Resources"]] == [a["id"]]


async def test_users_paging_is_stable_and_integer_typed(scim: ScimClient) -> None:
    ids = [(await scim.create_user(f"page{i:02d}@example.com"))["id"] for i in range(7)]
    seen: list[str] = []
    for start in (1, 4, 7):
        status, body, _ = await scim.get("/Users", params={"startIndex": str(start), "count": "3"})
        assert status == 200 and body["totalResults"] == 7 and body["startIndex"] == start
        assert isinstance(body["itemsPerPage"], int)
        seen += [r["id"] for r in body["Resources"]]
    assert seen == ids
    status, body, _ = await scim.get("/Users", params={"count": "0"})
    assert body["totalResults"] == 7 and body["Resources"] == []


async def test_users_bad_filter_is_400_invalid_filter(scim: ScimClient) -> None:
    status, err, _ = await scim.get("/Users", params={"filter": 'userName eq'})
    assert status == 400 and err["scimType"] == "invalidFilter" and err["detail"]


async def test_users_put_replaces_and_bumps_version(scim: ScimClient) -> None:
    doc = await scim.create_user("frank@example.com", title="Engineer", nickName="Frankie")
    body = {"schemas": [USER_SCHEMA], "userName": "frank@example.com", "title": "Manager", "active": True}
    status, got, resp = await scim.put(f"/Users/{doc['id']}", body)
    assert status == 200 and got["title"] == "Manager" and "nickName" not in got
    assert resp.headers["ETag"] == 'W/"2"' and got["meta"]["version"] == 'W/"2"'
    assert got["meta"]["created"] == doc["meta"]["created"]


async def test_users_put_deactivate_then_patch_reactivate(scim: ScimClient) -> None:
    doc = await scim.create_user("gina@example.com", active=True)
    status, got, _ = await scim.put(f"/Users/{doc['id']}", {"schemas": [USER_SCHEMA], "userName": "gina@example.com",
                                                           "active": False})
    assert status == 200 and got["active"] is False
    status, got, _ = await scim.patch(f"/Users/{doc['id']}", [{"op": "replace", "value": {"active": True}}])
    assert status == 200 and got["active"] is True


async def test_users_patch_simple_attributes(scim: ScimClient) -> None:
    doc = await scim.create_user("hank@example.com", name={"givenName": "Hank", "familyName": "Hill"})
    status, got, _ = await scim.patch(f"/Users/{doc['id']}", [
        {"op": "replace", "path": "name.familyName", "value": "Rutherford"},
        {"op": "add", "path": "title", "value": "Propane"},
        {"op": "remove", "path": "name.givenName"},
    ])
    assert status == 200
    assert got["name"] == {"familyName": "Rutherford"} and got["title"] == "Propane"
    status, again, _ = await scim.get(f"/Users/{doc['id']}")
    assert again["name"] == {"familyName": "Rutherford"} and again["meta"]["version"] == 'W/"2"'


async def test_users_enterprise_extension_round_trip(scim: ScimClient) -> None:
    body = alice(**{ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"}})
    body["schemas"] = [USER_SCHEMA, ENTERPRISE]
    status, doc, _ = await scim.post("/Users", body)
    assert status == 201 and ENTERPRISE in doc["schemas"]
    assert doc[ENTERPRISE] == {"employeeNumber": "701984", "department": "Tour Operations"}


async def test_users_groups_attribute_is_derived_and_read_only(scim: ScimClient) -> None:
    u = await scim.create_user("ivy@example.com", groups=[{"value": "forged"}])
    assert "groups" not in u
    g = await scim.create_group("Engineering", members=[u["id"]])
    status, got, _ = await scim.get(f"/Users/{u['id']}")
    assert got["groups"] == [{"value": g["id"], "$ref": g["meta"]["location"], "display": "Engineering", "type": "direct"}]


async def test_users_delete_removes_memberships(scim: ScimClient) -> None:
    u = await scim.create_user("jack@example.com")
    g = await scim.create_group("Ops", members=[u["id"]])
    assert (await scim.delete(f"/Users/{u['id']}"))[0] == 204
    status, got, _ = await scim.get(f"/Groups/{g['id']}")
    assert status == 200 and got.get("members", []) == []


async def test_users_malformed_json_is_400_invalid_syntax(scim: ScimClient) -> None:
    status, err, _ = await scim.request("POST", "/Users", raw='{"userName": ')
    assert status == 400 and err["scimType"] == "invalidSyntax"


async def test_users_missing_user_name_is_400(scim: ScimClient) -> None:
    status, err, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "displayName": "No Name"})
    assert status == 400 and err["scimType"] in ("invalidValue", "invalidSyntax") and "userName" in err["detail"]


async def test_users_application_json_accepted(scim: ScimClient) -> None:
    status, doc, resp = await scim.post("/Users", alice(), headers={"Content-Type": "application/json"})
    assert status == 201 and resp.headers["Content-Type"].startswith("application/scim+json")


async def test_users_if_match_and_if_none_match(scim: ScimClient) -> None:
    doc = await scim.create_user("kim@example.com")
    path = f"/Users/{doc['id']}"
    status, body, resp = await scim.get(path, headers={"If-None-Match": 'W/"1"'})
    assert status == 304 and body is None and resp.headers["ETag"] == 'W/"1"'
    status, _, resp = await scim.get(path, headers={"If-None-Match": 'W/"0"'})
    assert status == 200 and resp.headers["ETag"] == 'W/"1"'
    status, err, _ = await scim.patch(path, [{"op": "replace", "path": "title", "value": "x"}],
                                      headers={"If-Match": 'W/"7"'})
    assert status == 412 and err["status"] == "412" and 'W/"1"' in err["detail"]
    assert "title" not in (await scim.get(path))[1]  # the refused PATCH changed nothing
    status, patched, resp = await scim.patch(path, [{"op": "replace", "path": "title", "value": "x"}],
                                             headers={"If-Match": 'W/"1"'})
    assert status == 200 and patched["title"] == "x" and patched["meta"]["version"] == resp.headers["ETag"] == 'W/"2"'
    status, err, _ = await scim.delete(path, headers={"If-Match": 'W/"1"'})
    assert status == 412 and err["status"] == "412"
    assert (await scim.get(path))[0] == 200  # a stale If-Match deletes nothing
    status, _, _ = await scim.delete(path, headers={"If-Match": 'W/"2"'})
    assert status == 204 and (await scim.get(path))[0] == 404


async def test_users_attributes_and_excluded_attributes(scim: ScimClient) -> None:
    doc = await scim.create_user("lee@example.com", title="Chef", name={"givenName": "Lee"})
    status, got, _ = await scim.get(f"/Users/{doc['id']}", params={"attributes": "userName,name.givenName"})
    assert status == 200 and set(got) >= {"id", "userName", "name"} and "title" not in got
    status, got, _ = await scim.get(f"/Users/{doc['id']}", params={"excludedAttributes": "title"})
    assert "title" not in got and got["userName"] == "lee@example.com"


async def test_users_unknown_route_is_scim_404(scim: ScimClient) -> None:
    status, err, resp = await scim.get("/Widgets")
    assert status == 404 and err["status"] == "404" and resp.headers["Content-Type"].startswith("application/scim+json")


async def test_users_method_not_allowed(scim: ScimClient) -> None:
    status, err, _ = await scim.request("DELETE", "/Users")
    assert status == 405 and err["status"] == "405"


async def test_users_unqualified_extension_attribute_resolves_in_filters(scim: ScimClient) -> None:
    # RFC 7644 §3.10: a URN prefix may be omitted when the name is unambiguous; Entra filters on `manager`
    boss = await scim.create_user("boss@example.com")
    body = alice(**{ENTERPRISE: {"manager": {"value": boss["id"]}, "department": "Ops"}})
    body["schemas"] = [USER_SCHEMA, ENTERPRISE]
    _, doc, _ = await scim.post("/Users", body)
    status, lst, _ = await scim.get("/Users", params={"filter": f'id eq "{doc["id"]}" and manager eq "{boss["id"]}"'})
    assert status == 200 and [r["id"] for r in lst["Resources"]] == [doc["id"]]
    status, lst, _ = await scim.get("/Users", params={"filter": 'department eq "ops"'})
    assert [r["id"] for r in lst["Resources"]] == [doc["id"]]


async def test_users_sequential_index_paging_resumes_and_stays_correct_after_writes(scim: ScimClient) -> None:
    ids = [(await scim.create_user(f"walk{i:02d}"))["id"] for i in range(9)]

    async def walk() -> list[str]:
        seen: list[str] = []
        for start in (1, 4, 7):
            status, body, _ = await scim.get("/Users", params={"startIndex": str(start), "count": "3"})
            assert status == 200 and body["startIndex"] == start and body["totalResults"] == len(ids)
            seen += [r["id"] for r in body["Resources"]]
        return seen

    assert await walk() == ids
    walks = scim.gateway.service.walks
    assert walks.get((scim.tenant.id, "User", "", (), 3, 3)) is not None  # page 2 resumed from page 1's end
    await scim.delete(f"/Users/{ids[1]}")  # a write forgets the positions: OFFSET semantics again
    assert walks.get((scim.tenant.id, "User", "", (), 3, 3)) is None
    del ids[1]
    status, body, _ = await scim.get("/Users", params={"startIndex": "4", "count": "3"})
    assert [r["id"] for r in body["Resources"]] == ids[3:6] and body["totalResults"] == 8


async def test_users_errors_never_quote_a_password(scim: ScimClient) -> None:
    secret = "Hunter2-Secret-Value"
    for body in (alice(password={"v": secret}), alice(password=[secret])):
        status, err, _ = await scim.post("/Users", body)
        assert status == 400 and err["scimType"] == "invalidValue" and "password" in err["detail"]
        assert secret not in str(err)
    doc = await scim.create_user("pw-patch@example.com")
    status, err, _ = await scim.patch(f"/Users/{doc['id']}", [{"op": "replace", "path": "password", "value": {"x": secret}}])
    assert status == 400 and secret not in str(err)
    await scim.gateway.activity.flush()  # request events are written after the response
    async with scim.gateway.store.read() as r:
        events = await r.list_events(scim.tenant.id, type="scim_error")
    assert events and secret not in str([e.data for e in events])
    status, err, _ = await scim.patch(f"/Users/{doc['id']}", [{"op": "replace", "path": "title", "value": {"x": "shown"}}])
    assert status == 400 and "shown" in err["detail"]  # ordinary values are still quoted for the developer
