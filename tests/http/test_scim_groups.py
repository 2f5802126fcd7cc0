"""Groups over HTTP: members as rows, 204 PATCH, excludedAttributes=members."""

from __future__ import annotations

import asyncio

from gateway.testing import GROUP_SCHEMA, ScimClient


async def test_groups_create_with_members_and_get(scim: ScimClient) -> None:
    u1 = await scim.create_user("m1@example.com", displayName="Member One")
    u2 = await scim.create_user("m2@example.com")
    g = await scim.create_group("Admins", members=[u1["id"], u2["id"]])
    assert g["displayName"] == "Admins" and g["meta"]["resourceType"] == "Group"
    status, got, _ = await scim.get(f"/Groups/{g['id']}")
    assert status == 200
    members = {m["value"]: m for m in got["members"]}
    assert set(members) == {u1["id"], u2["id"]}
    assert members[u1["id"]]["type"] == "User" and "display" not in members[u1["id"]]
    assert members[u1["id"]]["$ref"].endswith(f"/Users/{u1['id']}")


async def test_groups_create_with_empty_members(scim: ScimClient) -> None:
    status, g, _ = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Empty", "members": []})
    assert status == 201 and g.get("members", []) == []


async def test_groups_unknown_member_is_400(scim: ScimClient) -> None:
    status, err, _ = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Bad",
                                                 "members": [{"value": "no-such-user"}]})
    assert status == 400 and err["scimType"] == "invalidValue"
    status, body, _ = await scim.get("/Groups")
    assert body["totalResults"] == 0  # nothing half-written


async def test_groups_patch_add_and_remove_member_answers_204(scim: ScimClient) -> None:
    u1 = await scim.create_user("p1@example.com")
    u2 = await scim.create_user("p2@example.com")
    g = await scim.create_group("Patchers", members=[u1["id"]])
    status, body, resp = await scim.patch(f"/Groups/{g['id']}", [{"op": "add", "path": "members", "value": [{"value": u2["id"]}]}])
    assert status == 204 and body is None and resp.headers["ETag"] == 'W/"2"'
    status, _, _ = await scim.patch(f"/Groups/{g['id']}", [{"op": "remove", "path": f'members[value eq "{u1["id"]}"]'}])
    assert status == 204
    status, got, _ = await scim.get(f"/Groups/{g['id']}")
    assert [m["value"] for m in got["members"]] == [u2["id"]]


async def test_groups_patch_with_attributes_answers_200_with_only_those(scim: ScimClient) -> None:
    u1 = await scim.create_user("q1@example.com")
    g = await scim.create_group("Quiet")
    status, body, _ = await scim.patch(
        f"/Groups/{g['id']}", [{"op": "add", "path": "members", "value": [{"value": u1["id"]}]}],
        params={"attributes": "displayName"},
    )
    assert status == 200 and body["displayName"] == "Quiet" and "members" not in body and body["id"] == g["id"]


async def test_groups_no_path_replace_renames(scim: ScimClient) -> None:
    g = await scim.create_group("Old Name")
    status, _, _ = await scim.patch(f"/Groups/{g['id']}", [{"op": "replace", "value": {"displayName": "New Name"}}])
    assert status == 204
    status, got, _ = await scim.get(f"/Groups/{g['id']}")
    assert got["displayName"] == "New Name"


async def test_groups_excluded_members_not_loaded(scim: ScimClient) -> None:
    u1 = await scim.create_user("x1@example.com")
    g = await scim.create_group("Excluded", members=[u1["id"]])
    status, got, _ = await scim.get(f"/Groups/{g['id']}", params={"excludedAttributes": "members"})
    assert status == 200 and "members" not in got and got["displayName"] == "Excluded"
    status, body, _ = await scim.get("/Groups", params={"filter": 'displayName eq "excluded"',
                                                        "excludedAttributes": "members"})
    assert body["totalResults"] == 1 and "members" not in body["Resources"][0]


async def test_groups_put_replaces_members(scim: ScimClient) -> None:
    u1 = await scim.create_user("r1@example.com")
    u2 = await scim.create_user("r2@example.com")
    g = await scim.create_group("Replace", members=[u1["id"]])
    status, got, _ = await scim.put(f"/Groups/{g['id']}", {"schemas": [GROUP_SCHEMA], "displayName": "Replaced",
                                                           "members": [{"value": u2["id"]}]})
    assert status == 200 and got["displayName"] == "Replaced" and [m["value"] for m in got["members"]] == [u2["id"]]


async def test_groups_delete(scim: ScimClient) -> None:
    g = await scim.create_group("Doomed")
    assert (await scim.delete(f"/Groups/{g['id']}"))[0] == 204
    assert (await scim.get(f"/Groups/{g['id']}"))[0] == 404
    assert (await scim.delete(f"/Groups/{g['id']}"))[0] == 404


async def test_groups_concurrent_member_patches_lose_nothing(scim: ScimClient) -> None:
    users = [await scim.create_user(f"c{i}@example.com") for i in range(20)]
    g = await scim.create_group("Concurrent")
    results = await asyncio.gather(*(
        scim.patch(f"/Groups/{g['id']}", [{"op": "add", "path": "members", "value": [{"value": u["id"]}]}])
        for u in users
    ))
    assert all(r[0] == 204 for r in results)
    status, got, _ = await scim.get(f"/Groups/{g['id']}")
    assert len(got["members"]) == 20 and got["meta"]["version"] == 'W/"21"'


async def test_groups_patch_remove_members_by_type_filter(scim: ScimClient) -> None:
    u = await scim.create_user("t1@example.com")
    inner = await scim.create_group("Inner")
    g = await scim.create_group("Outer", members=[u["id"], inner["id"]])
    status, _, _ = await scim.patch(f"/Groups/{g['id']}", [{"op": "remove", "path": 'members[type eq "Group"]'}])
    assert status == 204
    status, got, _ = await scim.get(f"/Groups/{g['id']}")
    assert [m["value"] for m in got["members"]] == [u["id"]]
