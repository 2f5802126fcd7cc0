"""Role mapping and SSO over the Store directly, on every configured backend (SQLite; PostgreSQL when
SCIM_GATEWAY_TEST_POSTGRES is set), so the role queries' shared SQL is proven on both."""

from __future__ import annotations

from gateway.clock import now
from gateway.identity import management, roles, sso
from gateway.identity.tenants import create_tenant
from gateway.store.base import Member, ResourceRow, Store


def _user(uid: str, **kw: object) -> ResourceRow:
    ts = now()
    kw.setdefault("data", {"userName": f"{uid}@example.com"})
    return ResourceRow(id=uid, version=1, created=ts, last_modified=ts, **kw)  # type: ignore[arg-type]


def _group(gid: str, name: str) -> ResourceRow:
    ts = now()
    return ResourceRow(id=gid, data={"displayName": name}, version=1, created=ts, last_modified=ts)


async def test_roles_store_set_based_recompute(store: Store) -> None:
    t = await create_tenant(store, "Roles", scim_enabled=True)
    other = await create_tenant(store, "Other", scim_enabled=True)
    async with store.write() as tx:
        for uid in ("a", "b", "c"):
            await tx.insert_user(t.id, _user(uid))
        await tx.insert_user(t.id, _user("jit", provisioned_by="jit", roles=["from-sso"]))
        await tx.insert_user(t.id, _user("stale", roles=["old"]))
        await tx.insert_group(t.id, _group("g1", "Finance"))
        await tx.insert_group(t.id, _group("g2", "Admins"))
        await tx.add_members(t.id, "g1", [Member("a", "User"), Member("b", "User"), Member("g2", "Group")])
        await tx.add_members(t.id, "g2", [Member("b", "User")])
        await tx.insert_user(other.id, _user("a"))
        await tx.insert_group(other.id, _group("g1", "Finance"))
        await tx.add_members(other.id, "g1", [Member("a", "User")])
    mapping = roles.RoleMapping(source="idp_groups", group_roles={"FINANCE": ["acct"], "g2": ["admin", "acct"]},
                                default_roles=["viewer"])
    async with store.write() as tx:
        assert await tx.member_group_roles(t.id, mapping.pairs()) == {"a": {"acct"}, "b": {"acct", "admin"}}
        assert await tx.member_group_roles(t.id, mapping.pairs(), user_ids=["b"], exclude_group="g2") == {"b": {"acct"}}
        context: dict[str, object] = {}
        changed = await roles.recompute_all(tx, t.id, mapping, context=context)
        assert changed == 4  # a, b, stale -> viewer; c had [] -> viewer; the JIT user keeps its SSO roles
        got = await tx.get_user_roles(t.id, ["a", "b", "c", "jit", "stale"])
        assert got == {"a": ["acct"], "b": ["acct", "admin"], "c": ["viewer"], "jit": ["from-sso"], "stale": ["viewer"]}
        assert await tx.role_derived_users(t.id, roles_not=["viewer"]) == {"a": ["acct"], "b": ["acct", "admin"]}
        assert await tx.get_user_roles(other.id, ["a"]) == {"a": []}  # the other tenant is untouched
        assert await roles.recompute_users(tx, t.id, mapping, ["b"], exclude_group="g2") == 1
        assert (await tx.get_user_roles(t.id, ["b"]))["b"] == ["acct"]


async def test_roles_store_mapping_change_through_admin_and_sso(store: Store) -> None:
    t = await create_tenant(store, "Flow", scim_enabled=False)
    async with store.write() as tx:
        await tx.insert_user(t.id, _user("u1", data={"userName": "u1@example.com", "roles": [{"value": "Admin"}]}))
    url = lambda tid: f"https://x/scim/v2/{tid}"  # noqa: E731
    body = management.TenantUpdate(role_mapping=roles.RoleMapping(source="idp_attribute"), scim_enabled=True)
    view = await management.update_tenant(store, t.id, body, url)
    assert view["scim_enabled"] is True
    async with store.read() as r:
        assert await r.get_user_roles(t.id, ["u1"]) == {"u1": ["Admin"]}
    decision = await sso.sign_in(store, t.id, sso.SignInRequest(userName="U1@EXAMPLE.COM", attributes={"roles": ["x"]}))
    assert decision.status == 200 and decision.body["roles"] == ["Admin"] and decision.body["roles_source"] == "scim_record"
