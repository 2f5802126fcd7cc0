"""The SSO sign-in decision: one test per row of the product document's SCIM x SSO table, plus deactivation."""

from __future__ import annotations

import asyncio

from gateway.testing import ScimClient
from identity_kit import Admin

GROUPS_MAPPING = {"source": "idp_groups", "group_roles": {"Finance": ["accountant"], "Admins": ["admin"]},
                  "default_roles": ["viewer"]}


async def test_sso_new_user_without_scim_is_jit_created_with_mapped_roles(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, scim_enabled=False, role_mapping=GROUPS_MAPPING)
    status, body = await admin.sign_in(tid, "New.User@Example.com", email="new.user@example.com", givenName="New",
                                       familyName="User", groups=["finance", "Unmapped"])
    assert status == 200, body
    assert body["decision"] == "allow" and body["jit_created"] is True
    assert body["roles"] == ["accountant"] and body["roles_source"] == "role_mapping"
    user = body["user"]
    assert user["provisioned_by"] == "jit" and user["email"] == "new.user@example.com" and user["active"] is True
    # JIT users are SCIM Users too: once SCIM is on, the IdP's userName lookup finds them (any case).
    await admin.patch_tenant(tid, scim_enabled=True)
    status, found, _ = await scim.get("/Users", params={"filter": 'userName eq "new.user@example.com"'})
    assert status == 200 and found["totalResults"] == 1 and found["Resources"][0]["id"] == user["id"]
    assert found["Resources"][0]["name"] == {"givenName": "New", "familyName": "User"}
    # A JIT create is no SCIM operation: no scim_* event.
    assert await admin.events(tid) == []


async def test_sso_new_user_with_scim_is_rejected_and_nothing_created(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id  # the scim fixture's tenant has SCIM on
    status, body = await admin.sign_in(tid, "stranger@example.com", groups=["Admins"])
    assert status == 403
    assert body["decision"] == "reject" and body["reason"] == "scim_required_user_not_provisioned"
    assert await admin.users(tid) == {}


async def test_sso_existing_user_without_scim_resyncs_roles_every_sign_in(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, scim_enabled=False, role_mapping=GROUPS_MAPPING)
    status, first = await admin.sign_in(tid, "kim@example.com", groups=["Finance"])
    assert status == 200 and first["jit_created"] and first["roles"] == ["accountant"]
    status, again = await admin.sign_in(tid, "KIM@example.com", groups=["Admins", "Finance"])
    assert status == 200 and again["jit_created"] is False and again["user"]["id"] == first["user"]["id"]
    assert again["roles"] == ["accountant", "admin"] and again["roles_source"] == "role_mapping"
    assert await admin.roles(tid, "kim@example.com") == ["accountant", "admin"]
    status, dropped = await admin.sign_in(tid, "kim@example.com", groups=[])
    assert dropped["roles"] == ["viewer"]
    # idp_attribute: from the assertion's attributes, mapped through attribute_values.
    await admin.patch_tenant(tid, role_mapping={"source": "idp_attribute", "attribute": "roles",
                                                "attribute_values": {"Admin": "admin"}})
    status, attr = await admin.sign_in(tid, "kim@example.com", attributes={"roles": ["Admin", "Other"]})
    assert attr["roles"] == ["admin"]
    # Portal-managed: sign-in leaves roles as they are.
    await admin.patch_tenant(tid, role_mapping={"source": "portal"})
    status, _ = await admin.call("PUT", f"/tenants/{tid}/users/{first['user']['id']}/roles", {"roles": ["owner"]})
    assert status == 200
    status, portal = await admin.sign_in(tid, "kim@example.com", groups=["Admins"])
    assert portal["roles"] == ["owner"] and portal["roles_source"] == "portal"


async def test_sso_existing_user_with_scim_reads_roles_from_scim_record(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, role_mapping=GROUPS_MAPPING)
    u = await scim.create_user("lee@example.com")
    await scim.create_group("Finance", members=[u["id"]])
    status, body = await admin.sign_in(tid, "Lee@Example.com", groups=["Admins"], attributes={"roles": ["x"]})
    assert status == 200 and body["decision"] == "allow" and body["jit_created"] is False
    assert body["roles"] == ["accountant"] and body["roles_source"] == "scim_record"  # the assertion is ignored
    assert await admin.roles(tid, "lee@example.com") == ["accountant"]


async def test_sso_deactivated_user_is_rejected_with_and_without_scim(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    u = await scim.create_user("gone@example.com")
    await scim.patch(f"/Users/{u['id']}", [{"op": "replace", "value": {"active": False}}])
    for scim_on in (True, False):
        await admin.patch_tenant(tid, scim_enabled=scim_on)
        status, body = await admin.sign_in(tid, "gone@example.com")
        assert status == 403 and body == {"decision": "reject", "reason": "user_deactivated", "detail": body["detail"]}


async def test_sso_user_removed_in_idp(scim: ScimClient, admin: Admin) -> None:
    """Third row: with SCIM the next sync deprovisions; without it the account stays until deleted by hand."""
    tid = scim.tenant.id
    u = await scim.create_user("leaver@example.com")
    status, _, _ = await scim.delete(f"/Users/{u['id']}")
    assert status == 204
    status, body = await admin.sign_in(tid, "leaver@example.com")
    assert status == 403 and body["reason"] == "scim_required_user_not_provisioned"
    await admin.patch_tenant(tid, scim_enabled=False)
    status, jit = await admin.sign_in(tid, "stays@example.com")
    assert status == 200 and jit["jit_created"]
    status, again = await admin.sign_in(tid, "stays@example.com")  # nothing removes it without SCIM
    assert status == 200 and again["jit_created"] is False


async def test_sso_turning_scim_off_deletes_nothing_and_jit_resumes(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await scim.create_user("kept@example.com")
    await admin.patch_tenant(tid, scim_enabled=False)
    status, err, _ = await scim.get("/Users")
    assert status == 403 and "scim_enabled" in err["detail"] and err["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert set(await admin.users(tid)) == {"kept@example.com"}
    status, body = await admin.sign_in(tid, "fresh@example.com")
    assert status == 200 and body["jit_created"] is True
    await admin.patch_tenant(tid, scim_enabled=True)  # back on: no migration, everything is there
    status, listing, _ = await scim.get("/Users")
    assert status == 200 and listing["totalResults"] == 2


async def test_sso_concurrent_first_sign_ins_create_one_user(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, scim_enabled=False)
    results = await asyncio.gather(*(admin.sign_in(tid, "race@example.com") for _ in range(5)))
    assert all(status == 200 for status, _ in results)
    assert sum(body["jit_created"] for _, body in results) == 1
    assert len({body["user"]["id"] for _, body in results}) == 1


async def test_sso_sign_in_body_is_validated(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    status, body = await admin.call("POST", f"/tenants/{tid}/sso/sign-in", {"userName": "a@b.c", "password": "hunter2"})
    assert status == 400 and body["error"] == "validation_error" and "hunter2" not in body["detail"]
    status, body = await admin.call("POST", f"/tenants/{tid}/sso/sign-in", {"groups": ["x"]})
    assert status == 400 and "userName" in body["detail"]
    status, body = await admin.call("POST", "/tenants/nope/sso/sign-in", {"userName": "a@b.c"})
    assert status == 404 and body["error"] == "not_found"
