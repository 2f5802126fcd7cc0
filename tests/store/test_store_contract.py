"""The storage contract: every backend must pass every test here (DESIGN §6)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.clock import now
from gateway.identity.tenants import authenticate, create_api_key, create_tenant, hash_key
from gateway.store.base import Member, Query, ResourceRow, Store, StoreConflict


def user(uid: str, name: str, **data: object) -> ResourceRow:
    ts = now()
    return ResourceRow(id=uid, data={"userName": name, **data}, version=1, created=ts, last_modified=ts)


def group(gid: str, name: str) -> ResourceRow:
    ts = now()
    return ResourceRow(id=gid, data={"displayName": name}, version=1, created=ts, last_modified=ts)


async def two_tenants(store: Store) -> tuple[str, str]:
    a = await create_tenant(store, "Tenant A", scim_enabled=True)
    b = await create_tenant(store, "Tenant B", scim_enabled=True)
    return a.id, b.id


async def test_store_tenant_round_trip(store: Store) -> None:
    t = await create_tenant(store, "Acme Corp", idp="okta")
    async with store.read() as r:
        got = await r.get_tenant(t.id)
        assert await r.get_tenant("nope") is None
    assert got is not None
    assert (got.name, got.idp, got.scim_enabled, got.role_mapping) == ("Acme Corp", "okta", False, {"source": "portal"})
    async with store.write() as tx:
        await tx.update_tenant(t.id, scim_enabled=True, role_mapping={"source": "idp_groups", "group_roles": {}})
    async with store.read() as r:
        got = await r.get_tenant(t.id)
    assert got is not None and got.scim_enabled and got.role_mapping["source"] == "idp_groups"


async def test_store_api_key_hashed_and_revocable(store: Store) -> None:
    t = await create_tenant(store, "Keys")
    new = await create_api_key(store, t.id, "Okta SCIM")
    assert new.key.startswith("scimgw_") and len(new.key) >= 7 + 43
    async with store.read() as r:
        found = await r.find_api_key_tenant(hash_key(new.key))
    assert found is not None and found[1] == hash_key(new.key) and new.key not in str(found)
    assert await authenticate(store, t.id, new.key) is not None
    assert await authenticate(store, t.id, new.key + "x") is None
    async with store.write() as tx:
        assert await tx.revoke_api_key(t.id, new.row.id, now())
        assert not await tx.revoke_api_key(t.id, new.row.id, now())
    assert await authenticate(store, t.id, new.key) is None


async def test_store_key_of_other_tenant_rejected(store: Store) -> None:
    a, b = await two_tenants(store)
    key_a = await create_api_key(store, a, "a")
    assert await authenticate(store, b, key_a.key) is None
    assert await authenticate(store, a, key_a.key) is not None


async def test_store_user_name_unique_case_insensitive_per_tenant(store: Store) -> None:
    a, b = await two_tenants(store)
    async with store.write() as tx:
        await tx.insert_user(a, user("u1", "Alice@Example.com"))
        await tx.insert_user(b, user("u1", "alice@example.com"))  # other tenant: no conflict
    with pytest.raises(StoreConflict):
        async with store.write() as tx:
            await tx.insert_user(a, user("u2", "ALICE@example.COM"))
    async with store.read() as r:
        found = await r.get_user_by_name(a, "alice@EXAMPLE.com")
        assert found is not None and found.id == "u1"
        assert await r.get_user(a, "u2") is None


async def test_store_write_rolls_back_on_error(store: Store) -> None:
    a, _ = await two_tenants(store)
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            await tx.insert_user(a, user("u1", "bob"))
            await tx.insert_event(a, "scim_provision", now(), {"x": 1})
            raise RuntimeError("boom")
    async with store.read() as r:
        assert await r.get_user(a, "u1") is None
        assert await r.list_events(a) == []


async def test_store_query_isolated_by_tenant_and_ordered(store: Store) -> None:
    a, b = await two_tenants(store)
    async with store.write() as tx:
        for i in range(5):
            await tx.insert_user(a, user(f"a{i}", f"user{i}"))
        await tx.insert_user(b, user("b0", "user0"))
    async with store.read() as r:
        page = await r.query_users(a, Query(limit=2, offset=1))
        assert page.total == 5 and [x.id for x in page.rows] == ["a1", "a2"]
        page = await r.query_users(a, Query(where="r.user_name_ci = ?", params=["user0"]))
        assert [x.id for x in page.rows] == ["a0"]
        page = await r.query_users(a, Query(limit=0))
        assert page.total == 5 and page.rows == []
        page = await r.query_users(a, Query(limit=10, after_seq=(await r.get_user(a, "a2")).seq))  # type: ignore[union-attr]
        assert [x.id for x in page.rows] == ["a3", "a4"]


async def test_store_members_are_rows(store: Store) -> None:
    a, b = await two_tenants(store)
    async with store.write() as tx:
        await tx.insert_user(a, user("u1", "one", displayName="User One"))
        await tx.insert_user(a, user("u2", "two"))
        await tx.insert_group(a, group("g1", "Admins"))
        assert await tx.add_members(a, "g1", [Member("u1", "User"), Member("u2", "User")]) == 2
        assert await tx.add_members(a, "g1", [Member("u1", "User")]) == 0  # idempotent
        assert await tx.existing_ids(a, ["u1", "g1", "zz"]) == {"u1": "User", "g1": "Group"}
        assert await tx.existing_ids(b, ["u1"]) == {}
    async with store.read() as r:
        members = await r.list_members(a, "g1")
        assert [(m.value, m.type, m.display) for m in members] == [("u1", "User", "User One"), ("u2", "User", "two")]
        groups = await r.groups_of_users(a, ["u1", "u2"])
        assert [g.value for g in groups["u1"]] == ["g1"] and groups["u1"][0].display == "Admins"
    async with store.write() as tx:
        assert await tx.remove_members(a, "g1", ["u2", "nope"]) == ["u2"]
        v = await tx.touch_group(a, "g1", now())
        assert v == 2
        assert await tx.delete_user(a, "u1")
    async with store.read() as r:
        assert await r.list_members(a, "g1") == []


async def test_store_concurrent_member_adds_lose_nothing(store: Store) -> None:
    a, _ = await two_tenants(store)
    async with store.write() as tx:
        await tx.insert_group(a, group("g1", "Big"))
        for i in range(40):
            await tx.insert_user(a, user(f"u{i}", f"user{i}"))

    async def add(i: int) -> None:
        async with store.write() as tx:
            await tx.add_members(a, "g1", [Member(f"u{i}", "User")])
            await tx.touch_group(a, "g1", now())

    await asyncio.gather(*(add(i) for i in range(40)))
    async with store.read() as r:
        assert len(await r.list_members(a, "g1")) == 40
        g = await r.get_group(a, "g1")
    assert g is not None and g.version == 41


async def test_store_events_newest_first_and_pruned(store: Store) -> None:
    a, b = await two_tenants(store)
    async with store.write() as tx:
        for i in range(5):
            await tx.insert_event(a, "scim_provision" if i % 2 else "scim_error", f"2026-01-0{i + 1}T00:00:00.000000Z", {"i": i})
        await tx.insert_event(b, "scim_error", now(), {"other": True})
    async with store.read() as r:
        events = await r.list_events(a)
        assert [e.data["i"] for e in events] == [4, 3, 2, 1, 0]
        errors = await r.list_events(a, type="scim_error", limit=2)
        assert [e.data["i"] for e in errors] == [4, 2]
        older = await r.list_events(a, before_seq=events[1].seq)
        assert [e.data["i"] for e in older] == [2, 1, 0]
    async with store.write() as tx:
        assert await tx.prune_events(a, older_than="2026-01-02T00:00:00.000000Z", keep=None) == 1
        assert await tx.prune_events(a, older_than=None, keep=2) == 2
    async with store.read() as r:
        assert [e.data["i"] for e in await r.list_events(a)] == [4, 3]
        assert len(await r.list_events(b)) == 1


async def test_store_delete_group_removes_memberships(store: Store) -> None:
    a, _ = await two_tenants(store)
    async with store.write() as tx:
        await tx.insert_user(a, user("u1", "one"))
        await tx.insert_group(a, group("g1", "G1"))
        await tx.add_members(a, "g1", [Member("u1", "User")])
        assert await tx.delete_group(a, "g1")
        assert not await tx.delete_group(a, "g1")
    async with store.read() as r:
        assert (await r.groups_of_users(a, ["u1"]))["u1"] == []


async def test_store_delete_racing_a_member_add_leaves_no_orphan(store: Store) -> None:
    a, _ = await two_tenants(store)
    async with store.write() as tx:
        await tx.insert_user(a, user("u1", "racer"))
        await tx.insert_group(a, group("g1", "Race"))
    adding = asyncio.Event()

    async def add() -> None:
        async with store.write() as tx:
            assert await tx.existing_ids(a, ["u1"]) == {"u1": "User"}
            await tx.add_members(a, "g1", [Member("u1", "User")])
            adding.set()
            await asyncio.sleep(0.2)  # the delete arrives while this transaction is still open

    async def delete() -> None:
        await adding.wait()
        async with store.write() as tx:
            await tx.delete_user(a, "u1")

    await asyncio.gather(add(), delete())
    async with store.read() as r:
        assert await r.get_user(a, "u1") is None
        assert await r.list_members(a, "g1") == []
