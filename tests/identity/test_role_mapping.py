"""Role mapping (R9) at provisioning time, driven by recorded Okta group pushes and Entra app-role payloads."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.clock import now
from gateway.identity.roles import RECOMPUTED_KEY, RoleMapping, attribute_values, roles_for_attribute
from gateway.store.base import Member, ResourceRow
from gateway.testing import ScimClient
from gateway.types import Change

from identity_kit import ENTRA_SAMPLES, OKTA_SAMPLES, Admin, Replay

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def test_roles_idp_groups_follow_okta_group_push(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    # Keys match case-insensitively: Okta pushes "Test SCIMv2".
    await admin.patch_tenant(tid, role_mapping={"source": "idp_groups", "group_roles": {"test scimv2": ["analyst"]},
                                                "default_roles": ["viewer"]})
    okta = Replay(scim, OKTA_SAMPLES)
    await okta.send("05")  # Push New Users
    await okta.send("06")
    first, second = "test.user@okta.local", "second.user@okta.local"
    assert await admin.roles(tid, first) == ["viewer"]  # in no group yet: the default
    await okta.send("17")  # Push Groups: create "Test SCIMv2", no members
    await okta.send("19")  # add first user
    assert await admin.roles(tid, first) == ["analyst"]
    assert await admin.roles(tid, second) == ["viewer"]
    await okta.send("20")  # rename carrying the id (same name)
    assert await admin.roles(tid, first) == ["analyst"]
    await okta.send("21")  # remove first, add second
    assert (await admin.roles(tid, first), await admin.roles(tid, second)) == (["viewer"], ["analyst"])
    await okta.send("22")  # replace all members: both
    assert (await admin.roles(tid, first), await admin.roles(tid, second)) == (["analyst"], ["analyst"])
    await okta.send("23")  # PUT with only the first user
    assert (await admin.roles(tid, first), await admin.roles(tid, second)) == (["analyst"], ["viewer"])
    await okta.send("25")  # delete the group
    assert (await admin.roles(tid, first), await admin.roles(tid, second)) == (["viewer"], ["viewer"])


async def test_roles_idp_groups_union_rename_id_key_and_mapping_change(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    u = await scim.create_user("ada@example.com")
    eng = await scim.create_group("Engineering", members=[u["id"]])
    ops = await scim.create_group("Ops", members=[u["id"]])
    await admin.patch_tenant(tid, role_mapping={"source": "idp_groups", "group_roles": {
        "ENGINEERING": ["developer"], ops["id"]: ["operator", "developer"]}})
    # The mapping change recomputed in the same request (set-based): union over both groups, ids match too.
    assert await admin.roles(tid, "ada@example.com") == ["developer", "operator"]
    status, _, _ = await scim.patch(f"/Groups/{eng['id']}", [{"op": "replace", "path": "displayName", "value": "Eng"}])
    assert status in (200, 204)
    assert await admin.roles(tid, "ada@example.com") == ["developer", "operator"]  # still via Ops
    await scim.delete(f"/Groups/{ops['id']}")
    assert await admin.roles(tid, "ada@example.com") == []  # "Eng" maps nothing, no default
    await scim.patch(f"/Groups/{eng['id']}", [{"op": "replace", "value": {"displayName": "engineering"}}])
    assert await admin.roles(tid, "ada@example.com") == ["developer"]
    await admin.patch_tenant(tid, role_mapping={"source": "idp_groups", "group_roles": {}, "default_roles": ["guest"]})
    assert await admin.roles(tid, "ada@example.com") == ["guest"]


@pytest.mark.parametrize("single", [True, False], ids=["SingleAppRoleAssignment", "AppRoleAssignmentsComplex"])
async def test_roles_idp_attribute_from_entra_app_roles(scim: ScimClient, admin: Admin, single: bool) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, role_mapping={"source": "idp_attribute", "attribute": "roles",
                                                "attribute_values": {"admin": "administrator", "User": "member"}})
    entra = Replay(scim, ENTRA_SAMPLES)
    if single:
        await entra.send("41")  # POST with roles[primary].value = "Admin"
        name = "alias@contoso.OnMicrosoft.com"
        assert await admin.roles(tid, name) == ["administrator"]  # attribute_values keys match case-insensitively
        await entra.send("42")  # Replace roles[primary eq "True"].value
        assert await admin.roles(tid, name) == ["administrator"]
        await entra.send("44")  # Add roles with a JSON-encoded value ("25" is not in attribute_values)
        assert await admin.roles(tid, name) == ["administrator"]
    else:
        await entra.send("45")  # POST with two roles
        name = "alias2@contoso.OnMicrosoft.com"
        assert await admin.roles(tid, name) == ["administrator", "member"]
        await entra.send("46")  # Add the same roles JSON-encoded: no change
        assert await admin.roles(tid, name) == ["administrator", "member"]
        uid = entra.captured["user6_id"]
        await scim.patch(f"/Users/{uid}", [{"op": "replace", "path": "roles", "value": [{"value": "User"}]}])
        assert await admin.roles(tid, name) == ["member"]


async def test_roles_idp_attribute_assertive_replace_and_values_as_they_are(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, role_mapping={"source": "idp_attribute"})  # attribute defaults to "roles"
    entra = Replay(scim, ENTRA_SAMPLES)
    await entra.send("47")
    assert await admin.roles(tid, "contoso@alias.onmicrosoft.com") == ["Test", "User"]
    await entra.send("48")
    assert await admin.roles(tid, "contoso@alias.onmicrosoft.com") == ["Test", "User"]


async def test_roles_idp_attribute_extension_path_and_mapping_change(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, role_mapping={"source": "idp_attribute", "attribute": f"{ENTERPRISE}:department",
                                                "default_roles": ["staff"]})
    u = await scim.create_user("eve@example.com", schemas=["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                               **{ENTERPRISE: {"department": "Finance"}})
    await scim.create_user("nodept@example.com")
    assert await admin.roles(tid, "eve@example.com") == ["Finance"]
    assert await admin.roles(tid, "nodept@example.com") == ["staff"]
    await scim.patch(f"/Users/{u['id']}", [{"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Legal"}])
    assert await admin.roles(tid, "eve@example.com") == ["Legal"]
    await admin.patch_tenant(tid, role_mapping={"source": "idp_attribute", "attribute": f"{ENTERPRISE}:department",
                                                "attribute_values": {"legal": "counsel"}})
    assert await admin.roles(tid, "eve@example.com") == ["counsel"]
    assert await admin.roles(tid, "nodept@example.com") == []


async def test_roles_portal_scim_never_changes_roles(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, role_mapping={"source": "portal", "default_roles": ["member"],
                                                "group_roles": {"Admins": ["admin"]}})
    entra = Replay(scim, ENTRA_SAMPLES)
    await entra.send("45")  # roles in the SCIM payload are ignored for role assignment
    name = "alias2@contoso.OnMicrosoft.com"
    assert await admin.roles(tid, name) == ["member"]  # new users start with the defaults
    uid = entra.captured["user6_id"]
    status, user = await admin.call("PUT", f"/tenants/{tid}/users/{uid}/roles", {"roles": ["owner", "billing", "owner"]})
    assert status == 200 and user["roles"] == ["billing", "owner"]
    await scim.create_group("Admins", members=[uid])
    await entra.send("46")
    assert await admin.roles(tid, name) == ["billing", "owner"]


async def test_roles_put_refused_unless_portal_managed(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    u = await scim.create_user("bob@example.com")
    await admin.patch_tenant(tid, role_mapping={"source": "idp_groups", "group_roles": {"A": ["a"]}})
    status, body = await admin.call("PUT", f"/tenants/{tid}/users/{u['id']}/roles", {"roles": ["x"]})
    assert status == 409 and body["error"] == "roles_not_portal_managed"
    assert "idp_groups" in body["detail"] and "portal" in body["detail"]
    assert await admin.roles(tid, "bob@example.com") == []


@pytest.mark.parametrize("mapping", [
    {"source": "ldap"},
    {"source": "idp_groups", "group_roles": {"A": "admin"}},
    {"source": "idp_groups", "unknown": 1},
    {"source": "idp_attribute", "attribute": "roles[primary eq true]"},
    {"source": "portal", "default_roles": [""]},
])
async def test_roles_mapping_is_validated(scim: ScimClient, admin: Admin, mapping: dict[str, Any]) -> None:
    status, body = await admin.call("PATCH", f"/tenants/{scim.tenant.id}", {"role_mapping": mapping})
    assert status == 400 and body["error"] == "validation_error" and "role_mapping" in body["detail"]


def test_roles_attribute_values_paths() -> None:
    doc = {"roles": [{"value": "A"}, {"value": '{"id":"x","value":"B","displayName":"B"}'}],
           "name": {"givenName": "Ada"}, ENTERPRISE: {"manager": {"value": "m1"}, "costCenter": 42}}
    assert attribute_values(doc, "roles") == ["A", "B"]
    assert attribute_values(doc, "ROLES.value") == ["A", "B"]
    assert attribute_values(doc, "name.givenName") == ["Ada"]
    assert attribute_values(doc, f"{ENTERPRISE}:manager") == ["m1"]
    assert attribute_values(doc, f"{ENTERPRISE.upper()}:costCenter") == ["42"]
    assert attribute_values(doc, "urn:unknown:x") == []
    m = RoleMapping(source="idp_attribute", attribute_values={"A": ["r1", "r2"], "b": "r3"})
    assert roles_for_attribute(m, doc) == ["r1", "r2", "r3"]


async def test_roles_one_member_change_in_10000_member_group_recomputes_only_that_member(
    scim: ScimClient, admin: Admin
) -> None:
    tid = scim.tenant.id
    gw = scim.gateway
    await admin.patch_tenant(tid, role_mapping={"source": "idp_groups", "group_roles": {"Everyone": ["employee"]}})
    ts = now()
    ids = [f"user-{i:05d}" for i in range(10_001)]
    async with gw.store.write() as tx:  # bulk-load straight into the store: 10,000 SCIM POSTs would be slow
        for uid in ids:
            await tx.insert_user(tid, ResourceRow(id=uid, data={"userName": f"{uid}@example.com"}, version=1,
                                                  created=ts, last_modified=ts, roles=["employee"]))
        await tx.insert_group(tid, ResourceRow(id="g-everyone", data={"displayName": "Everyone"}, version=1,
                                               created=ts, last_modified=ts))
        await tx.add_members(tid, "g-everyone", [Member(uid, "User") for uid in ids[:10_000]])
    newcomer = ids[-1]
    await tx_set_roles(gw, tid, newcomer, [])
    seen: list[tuple[str, set[str]]] = []

    async def spy(tx: Any, tenant: Any, change: Change, context: dict[str, Any]) -> None:
        seen.append((change.resource_id, set(context.get(RECOMPUTED_KEY, set()))))

    gw.service.listeners.append(spy)
    status, _, _ = await scim.patch("/Groups/g-everyone", [{"op": "add", "path": "members", "value": [{"value": newcomer}]}])
    assert status == 204
    assert seen == [("g-everyone", {newcomer})]
    status, _, _ = await scim.patch("/Groups/g-everyone", [{"op": "remove", "path": f'members[value eq "{ids[7]}"]'}])
    assert status == 204 and seen[-1] == ("g-everyone", {ids[7]})
    async with gw.store.read() as r:
        got = await r.get_user_roles(tid, [newcomer, ids[7], ids[8]])
    assert got == {newcomer: ["employee"], ids[7]: [], ids[8]: ["employee"]}


async def tx_set_roles(gw: Any, tid: str, uid: str, value: list[str]) -> None:
    async with gw.store.write() as tx:
        await tx.set_user_roles(tid, {uid: value})
