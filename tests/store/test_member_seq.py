"""A list page's groups read by seq range (migration 10, ``groups_of_users(seq_range=...)``), on every backend.

Every way a membership is written records the user member's seq, so a page's memberships can be
read as one range; a page whose seqs are spread out (other tenants in between, a filter) probes user
by user instead. Either way each user shows exactly its own groups, as a GET of the user shows them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from gateway.core.paging import ListParams
from gateway.core.schema import user_type
from gateway.core.service import ScimService
from gateway.identity.tenants import create_tenant
from gateway.store import Store
from gateway.store.sqlite import SqliteStore

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _svc(store: Store) -> ScimService:
    return ScimService(store, base_url=lambda t: f"https://gw.example/scim/v2/{t}")


async def _users(svc: ScimService, tenant: Any, names: list[str]) -> list[str]:
    ids = []
    for name in names:
        created = await svc.create(tenant, user_type(), {"schemas": [CORE], "userName": name})
        assert created.body is not None
        ids.append(created.body["id"])
    return ids


async def _groups_by_get(svc: ScimService, tenant: Any, ids: list[str]) -> dict[str, list[str]]:
    out = {}
    for uid in ids:
        got = await svc.get(tenant, user_type(), uid)
        assert got.body is not None
        out[uid] = [g["value"] for g in got.body.get("groups", [])]
    return out


async def _groups_by_page(svc: ScimService, tenant: Any, params: ListParams, *, encoded: bool) -> dict[str, list[str]]:
    page = await svc.search(tenant, user_type(), params, encoded=encoded)
    assert page.body is not None
    docs = orjson.loads(orjson.dumps(page.body))["Resources"]
    return {d["id"]: [g["value"] for g in d.get("groups", [])] for d in docs}


async def test_every_membership_write_path_shows_on_list_pages(store: Store) -> None:
    svc = _svc(store)
    tenant = await create_tenant(store, "t", scim_enabled=True)
    other = await create_tenant(store, "o", scim_enabled=True)
    gt = svc.types["Group"]
    ids = await _users(svc, tenant, [f"u{i}@example.com" for i in range(12)])
    # the other tenant's users take seqs in the middle of this tenant's, and belong to groups too
    others = await _users(svc, other, [f"o{i}@example.com" for i in range(3)])
    await svc.create(other, gt, {"schemas": [GROUP], "displayName": "theirs", "members": [{"value": o} for o in others]})
    ids += await _users(svc, tenant, [f"v{i}@example.com" for i in range(6)])

    # create with members (a nested group among them), PATCH add, PATCH replace, PUT
    nested = await svc.create(tenant, gt, {"schemas": [GROUP], "displayName": "nested"})
    assert nested.body is not None
    a = await svc.create(tenant, gt, {"schemas": [GROUP], "displayName": "A",
                                      "members": [{"value": ids[0]}, {"value": ids[5]}, {"value": nested.body["id"]}]})
    b = await svc.create(tenant, gt, {"schemas": [GROUP], "displayName": "B"})
    c = await svc.create(tenant, gt, {"schemas": [GROUP], "displayName": "C", "members": [{"value": ids[1]}]})
    assert a.body is not None and b.body is not None and c.body is not None
    await svc.patch(tenant, gt, b.body["id"], {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": ids[2]}, {"value": ids[13]}, {"value": ids[5]}]}]})
    await svc.patch(tenant, gt, c.body["id"], {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "members", "value": [{"value": ids[3]}, {"value": ids[17]}]}]})
    await svc.replace(tenant, gt, a.body["id"], {"schemas": [GROUP], "displayName": "A",
                                                  "members": [{"value": ids[0]}, {"value": ids[5]}, {"value": ids[12]}]})
    await svc.patch(tenant, gt, b.body["id"], {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{ids[2]}"]'}]})
    # a deleted member's memberships go with it
    await svc.delete(tenant, user_type(), ids[17])
    ids.remove(ids[17])

    expected = await _groups_by_get(svc, tenant, ids)
    assert expected[ids[5]] == sorted([a.body["id"], b.body["id"]], key=lambda g: "A" if g == a.body["id"] else "B")
    assert expected[ids[3]] == [c.body["id"]] and expected[ids[2]] == [] and expected[ids[12]] == [a.body["id"]]
    for params in (ListParams(count=100), ListParams(count=5), ListParams(count=5, start_index=11),
                   ListParams(count=3, cursor=""), ListParams(filter='userName sw "v"'), ListParams(count=4, sort_by="userName")):
        for encoded in (False, True):
            got = await _groups_by_page(svc, tenant, params, encoded=encoded)
            assert got and got == {uid: expected[uid] for uid in got}
    # nothing of the other tenant leaks into this tenant's pages, and its own pages are right too
    theirs = await _groups_by_page(svc, other, ListParams(count=100), encoded=True)
    assert theirs == await _groups_by_get(svc, other, others)


async def test_range_read_and_probes_agree_on_every_slice(store: Store) -> None:
    svc = _svc(store)
    tenant = await create_tenant(store, "t", scim_enabled=True)
    ids = await _users(svc, tenant, [f"u{i:02d}@example.com" for i in range(30)])
    gt = svc.types["Group"]
    for n, step in enumerate((2, 3, 7)):
        await svc.create(tenant, gt, {"schemas": [GROUP], "displayName": f"g{n}",
                                      "members": [{"value": u} for u in ids[::step]]})
    page = await svc.search(tenant, user_type(), ListParams(count=100))
    assert page.body is not None
    seq_of = {}
    async with store.read() as r:
        rows = (await r.query_users(tenant.id, svc.compile_query(user_type(), ListParams(count=100)))).rows
        seq_of = {row.id: row.seq for row in rows}
        for lo in range(0, 30, 4):
            chunk = ids[lo : lo + 9]
            seqs = [seq_of[u] for u in chunk]
            probed = await r.groups_of_users(tenant.id, chunk)
            ranged = await r.groups_of_users(tenant.id, chunk, seq_range=(min(seqs), max(seqs)))
            assert probed == ranged
            # asked for a subset of the range: the range's other users are not reported
            ranged_sub = await r.groups_of_users(tenant.id, chunk[::2], seq_range=(min(seqs), max(seqs)))
            assert set(ranged_sub) == set(chunk[::2]) and all(ranged_sub[u] == probed[u] for u in chunk[::2])


async def test_a_page_in_insertion_order_reads_its_groups_as_one_range(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "r.db"))
    await store.open()
    try:
        svc = _svc(store)
        tenant = await create_tenant(store, "t", scim_enabled=True)
        ids = await _users(svc, tenant, [f"u{i}@example.com" for i in range(60)])
        await svc.create(tenant, svc.types["Group"], {"schemas": [GROUP], "displayName": "g",
                                                      "members": [{"value": u} for u in ids]})
        statements: list[str] = []
        assert store._point is not None
        store._point.set_trace_callback(statements.append)
        await svc.search(tenant, user_type(), ListParams(count=10), encoded=True)
        member_reads = [s for s in statements if "group_members" in s]
        assert len(member_reads) == 1 and "member_seq BETWEEN" in member_reads[0]
        statements.clear()
        # every tenth user: 6 users over 51 seqs, too spread for a range read, so probed one by one
        spread = await _groups_by_page(svc, tenant, ListParams(filter='userName ew "0@example.com"'), encoded=True)
        assert len(spread) == 6 and all(len(g) == 1 for g in spread.values())
        member_reads = [s for s in statements if "group_members" in s]
        assert member_reads and all("member_seq" not in s for s in member_reads)
    finally:
        await store.close()


async def test_migration_fills_member_seq_of_existing_memberships(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = SqliteStore(str(path))
    await store.open()
    svc = _svc(store)
    tenant = await create_tenant(store, "t", scim_enabled=True)
    ids = await _users(svc, tenant, [f"u{i}@example.com" for i in range(6)])
    await svc.create(tenant, svc.types["Group"], {"schemas": [GROUP], "displayName": "g",
                                                  "members": [{"value": u} for u in ids[1:4]]})
    await store.close()
    # back to the schema before migration 10: no column, no index, not applied
    conn = sqlite3.connect(path)
    conn.executescript("DROP INDEX group_members_member_seq; ALTER TABLE group_members DROP COLUMN member_seq;"
                       " DELETE FROM schema_migrations WHERE version = 10;")
    conn.close()
    store = SqliteStore(str(path))
    await store.open()
    try:
        svc = _svc(store)
        got = await _groups_by_page(svc, tenant, ListParams(count=100), encoded=True)
        assert [uid for uid, groups in got.items() if groups] == ids[1:4]
        conn = sqlite3.connect(path)
        mismatched = conn.execute("SELECT count(*) FROM group_members m JOIN users u ON u.tenant_id = m.tenant_id"
                                  " AND u.id = m.member_id WHERE m.member_seq IS NOT u.seq").fetchone()
        conn.close()
        assert mismatched == (0,)
    finally:
        await store.close()
