"""Bulk (RFC 7644 §3.7), POST .search (§3.4.3), cursor paging (RFC 9865) and discovery (§4)."""

from __future__ import annotations

from gateway.testing import GROUP_SCHEMA, USER_SCHEMA, ScimClient

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


async def test_bulk_creates_with_bulk_id_references(scim: ScimClient) -> None:
    body = {
        "schemas": [BULK],
        "Operations": [
            # the group refers to a user created later in the same request: resolved in any order
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:u1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": [USER_SCHEMA], "userName": "Alice"}},
        ],
    }
    status, resp, _ = await scim.post("/Bulk", body)
    assert status == 200 and resp["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]
    ops = {o["bulkId"]: o for o in resp["Operations"]}
    assert ops["u1"]["status"] == "201" and ops["g1"]["status"] == "201"
    gid = ops["g1"]["location"].rsplit("/", 1)[1]
    uid = ops["u1"]["location"].rsplit("/", 1)[1]
    status, g, _ = await scim.get(f"/Groups/{gid}")
    assert [m["value"] for m in g["members"]] == [uid]


async def test_bulk_fail_on_errors_stops_and_reports(scim: ScimClient) -> None:
    await scim.create_user("taken")
    body = {
        "schemas": [BULK],
        "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER_SCHEMA], "userName": "taken"}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": [USER_SCHEMA], "userName": "fresh"}},
        ],
    }
    status, resp, _ = await scim.post("/Bulk", body)
    assert status == 200 and len(resp["Operations"]) == 1
    op = resp["Operations"][0]
    assert op["status"] == "409" and op["response"]["scimType"] == "uniqueness"
    status, lst, _ = await scim.get("/Users", params={"filter": 'userName eq "fresh"'})
    assert lst["totalResults"] == 0


async def test_bulk_patch_put_delete_with_version(scim: ScimClient) -> None:
    u = await scim.create_user("bulky")
    body = {"schemas": [BULK], "Operations": [
        {"method": "PATCH", "path": f"/Users/{u['id']}", "version": 'W/"1"',
         "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                  "Operations": [{"op": "replace", "path": "title", "value": "Bulked"}]}},
        {"method": "PATCH", "path": f"/Users/{u['id']}", "version": 'W/"1"',
         "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                  "Operations": [{"op": "replace", "path": "title", "value": "Stale"}]}},
        {"method": "DELETE", "path": f"/Users/{u['id']}"},
    ]}
    status, resp, _ = await scim.post("/Bulk", body)
    assert [o["status"] for o in resp["Operations"]] == ["200", "412", "204"]


async def test_bulk_max_operations_is_413(aiohttp_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gateway.testing import ScimClient as Client, add_tenant, build_app

    client = await aiohttp_client(build_app(tmp_path / "b.db", bulk_max_operations=2))
    tenant, key = await add_tenant(client.app, "Bulk")
    scim = Client(client, tenant, key)
    ops = [{"method": "POST", "path": "/Users", "bulkId": str(i), "data": {"schemas": [USER_SCHEMA], "userName": f"u{i}"}}
           for i in range(3)]
    status, err, _ = await scim.post("/Bulk", {"schemas": [BULK], "Operations": ops})
    assert status == 413 and "maxOperations" in err["detail"]
    status, spc, _ = await scim.get("/ServiceProviderConfig")
    assert spc["bulk"] == {"supported": True, "maxOperations": 2, "maxPayloadSize": 1048576}


async def test_bulk_invalid_envelope_is_400(scim: ScimClient) -> None:
    status, err, _ = await scim.post("/Bulk", {"schemas": [BULK], "Operations": [{"method": "GET", "path": "/Users"}]})
    assert status == 400 and err["scimType"] == "invalidSyntax"


async def test_search_post_matches_get(scim: ScimClient) -> None:
    a = await scim.create_user("s1@example.com", title="Pilot")
    await scim.create_user("s2@example.com", title="Sailor")
    status, body, _ = await scim.post("/Users/.search", {"schemas": [SEARCH], "filter": 'title eq "pilot"',
                                                         "attributes": ["userName"], "startIndex": 1, "count": 10})
    assert status == 200 and body["totalResults"] == 1
    assert body["Resources"] == [{"id": a["id"], "userName": "s1@example.com"}] or (
        body["Resources"][0]["id"] == a["id"] and "title" not in body["Resources"][0]
    )
    status, body, _ = await scim.post("/.search", {"schemas": [SEARCH], "filter": 'title pr'})
    assert status == 200 and body["totalResults"] == 2  # groups have no title: only users
    status, err, _ = await scim.post("/.search", {"filter": "title pr"})
    assert status == 400


async def test_search_root_spans_users_and_groups(scim: ScimClient) -> None:
    await scim.create_user("root1")
    await scim.create_group("Root Group")
    status, body, _ = await scim.post("/.search", {"schemas": [SEARCH]})
    assert body["totalResults"] == 2
    kinds = sorted(r["meta"]["resourceType"] for r in body["Resources"])
    assert kinds == ["Group", "User"]


async def test_cursor_paging_visits_every_user_once(scim: ScimClient) -> None:
    ids = [(await scim.create_user(f"cur{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = ""
    while True:
        status, body, _ = await scim.get("/Users", params={"cursor": cursor, "count": "2"})
        assert status == 200 and body["totalResults"] == 5 and "startIndex" not in body
        seen += [r["id"] for r in body["Resources"]]
        cursor = body.get("nextCursor")
        if not cursor:
            break
    assert seen == ids
    status, err, _ = await scim.get("/Users", params={"cursor": "garbage!!", "count": "2"})
    assert status == 400 and err["scimType"] == "invalidCursor"


async def test_sort_by_and_order(scim: ScimClient) -> None:
    for name in ("b-user", "C-user", "a-user"):
        await scim.create_user(name)
    status, body, _ = await scim.get("/Users", params={"sortBy": "userName"})
    assert [r["userName"] for r in body["Resources"]] == ["a-user", "b-user", "C-user"]
    status, body, _ = await scim.get("/Users", params={"sortBy": "userName", "sortOrder": "descending"})
    assert [r["userName"] for r in body["Resources"]] == ["C-user", "b-user", "a-user"]


async def test_discovery_documents_tell_the_truth(scim: ScimClient) -> None:
    status, spc, _ = await scim.get("/ServiceProviderConfig")
    assert status == 200 and spc["patch"]["supported"] and spc["filter"]["supported"] and spc["etag"]["supported"]
    assert spc["changePassword"]["supported"] is False and spc["sort"]["supported"]
    assert spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    status, rts, _ = await scim.get("/ResourceTypes")
    assert {r["id"] for r in rts["Resources"]} == {"User", "Group"}
    user_rt = next(r for r in rts["Resources"] if r["id"] == "User")
    assert user_rt["schemaExtensions"] == [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                                            "required": False}]
    status, one, _ = await scim.get("/ResourceTypes/Group")
    assert status == 200 and one["endpoint"] == "/Groups"
    status, schemas, _ = await scim.get("/Schemas")
    ids = {s["id"] for s in schemas["Resources"]}
    assert ids == {USER_SCHEMA, GROUP_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}
    status, user_schema, _ = await scim.get(f"/Schemas/{USER_SCHEMA}")
    attrs = {a["name"]: a for a in user_schema["Attributes" if "Attributes" in user_schema else "attributes"]}
    assert attrs["userName"]["uniqueness"] == "server" and attrs["password"]["returned"] == "never"
    assert attrs["groups"]["mutability"] == "readOnly"
    assert (await scim.get("/Schemas/urn:nope"))[0] == 404


async def test_sort_unassigned_values_last_ascending_first_descending(scim: ScimClient) -> None:
    await scim.create_user("t-none")
    await scim.create_user("t-b", title="B")
    await scim.create_user("t-a", title="a")
    status, body, _ = await scim.get("/Users", params={"sortBy": "title"})
    assert [r["userName"] for r in body["Resources"]] == ["t-a", "t-b", "t-none"]
    status, body, _ = await scim.get("/Users", params={"sortBy": "title", "sortOrder": "descending"})
    assert [r["userName"] for r in body["Resources"]] == ["t-none", "t-b", "t-a"]
