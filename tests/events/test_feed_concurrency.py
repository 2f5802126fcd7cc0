"""Sequences commit in order, so a cursor never skips an event committed late; IdP sample traffic."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from feed_kit import BACKENDS, POSTGRES_DSN, Feed, feed_settings, feed_store

from gateway.app import create_app
from gateway.events.outbox import new_event
from gateway.testing import Replay, ScimClient, add_tenant

REPO = Path(__file__).resolve().parents[2]
ENTRA_UA = {"User-Agent": "Azure Active Directory SCIM Client"}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_later_writer_waits_for_the_earlier_sequence_to_commit(backend: str, tmp_path: Path) -> None:
    """Tx A takes sequence 1 and stays open; tx B's events must not become visible before A's."""
    store = feed_store(backend, tmp_path)
    await store.open()
    try:
        from gateway.identity.tenants import create_tenant

        tid = (await create_tenant(store, "Order")).id
        a_has_seq = asyncio.Event()
        release_a = asyncio.Event()
        order: list[str] = []

        async def tx_a() -> None:
            async with store.write() as tx:
                tx.emit([new_event(tid, "user.created", {"n": "a"}, source="admin")])
                await tx.flush_outbox()
                a_has_seq.set()
                await release_a.wait()
            order.append("a")

        async def tx_b() -> None:
            await a_has_seq.wait()
            async with store.write() as tx:
                tx.emit([new_event(tid, "user.created", {"n": "b"}, source="admin")])
            order.append("b")

        ta, tb = asyncio.create_task(tx_a()), asyncio.create_task(tx_b())
        await a_has_seq.wait()
        await asyncio.sleep(0.2)  # give B every chance to commit first
        async with store.read() as r:
            _, _, visible = await r.read_outbox(tid, after=0, limit=10)
        assert visible == [] and order == []  # B has not committed past A's open sequence
        release_a.set()
        await asyncio.gather(ta, tb)
        assert order == ["a", "b"]
        async with store.read() as r:
            _, _, events = await r.read_outbox(tid, after=0, limit=10)
        assert [(e.seq, e.data["n"]) for e in events] == [(1, "a"), (2, "b")]
    finally:
        await store.close()


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_DSN, reason="needs PostgreSQL: set SCIM_GATEWAY_TEST_POSTGRES")
async def test_two_gateways_concurrent_writers_cursor_reader_sees_every_event_once(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> None:
    schema = f"feed_{uuid.uuid4().hex[:12]}"
    apps = [create_app(feed_settings(), store=feed_store("postgres", tmp_path, schema=schema, drop=(i == 0)))
            for i in range(2)]
    clients = [await aiohttp_client(app) for app in apps]
    tenant, key = await add_tenant(clients[0].app, "Concurrent")
    scims = [ScimClient(c, tenant, key) for c in clients]
    readers = [Feed(s) for s in scims]
    group = await scims[0].create_group("Shared")
    writers_done = asyncio.Event()
    seen: list[dict[str, Any]] = []

    async def writer(n: int) -> None:
        s = scims[n % 2]
        for i in range(15):
            uid = (await s.create_user(f"w{n}-{i}"))["id"]
            status, _, _ = await s.patch(f"/Groups/{group['id']}", [{"op": "add", "path": "members",
                                                                       "value": [{"value": uid}]}])
            assert status in (200, 204)
            if i % 3 == 0:
                assert (await s.patch(f"/Users/{uid}", [{"op": "replace", "path": "active", "value": False}]))[0] == 200

    async def reader() -> None:
        cursor: str | None = None
        while True:
            done = writers_done.is_set()
            params = {"limit": "7", **({"after": cursor} if cursor else {})}
            page = await readers[len(seen) % 2].page(**params)  # alternate the two gateways
            seen.extend(page["data"])
            cursor = page["next_cursor"]
            if done and len(page["data"]) < 7:
                return
            await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(6)))
    writers_done.set()
    await reading
    everything = await readers[0].all_events()
    assert len(everything) == 1 + 6 * 15 * 2 + 6 * 5
    assert [e["sequence"] for e in everything] == list(range(1, len(everything) + 1))
    assert [e["id"] for e in seen] == [e["id"] for e in everything]  # every event once, in order


async def _replay_types(scim: ScimClient, folder: Path, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    r = Replay(scim, folder, headers)
    await r.run_all()
    return await Feed(scim).all_events()


async def test_okta_sample_traffic_events(feed: Feed) -> None:
    okta = await feed.scim.other_tenant("Okta", idp="okta")
    events = await _replay_types(okta, REPO / "plugins" / "okta" / "tests")
    kinds = {e["type"] for e in events}
    # Okta's documented "rename" sends the name the group already has: no group.updated for it
    assert {"user.created", "user.updated", "user.deactivated", "user.reactivated", "group.created",
            "group.member_added", "group.member_removed", "group.deleted"} <= kinds
    assert "group.updated" not in kinds
    assert {e["client"] for e in events} == {"okta"} and {e["source"] for e in events} == {"scim"}


async def test_entra_sample_traffic_events(feed: Feed) -> None:
    entra = await feed.scim.other_tenant("Entra", idp="entra")
    events = await _replay_types(entra, REPO / "plugins" / "entra" / "tests", ENTRA_UA)
    kinds = {e["type"] for e in events}
    assert {"user.created", "user.updated", "user.deactivated", "user.deleted", "group.created",
            "group.updated", "group.member_added", "group.member_removed", "group.deleted"} <= kinds
    assert {e["client"] for e in events} == {"entra"}


async def test_entra_app_role_assignment_changes_roles(make_feed: Callable[..., Awaitable[Feed]]) -> None:
    feed = await make_feed("EntraRoles", idp="entra")
    status, body = await feed.admin("PATCH", "", {"role_mapping": {"source": "idp_attribute", "attribute": "roles"}})
    assert status == 200, body
    s = feed.scim
    uid = (await s.create_user("role@example.com"))["id"]
    ops = [{"op": "Add", "path": 'roles[primary eq "True"].value', "value": "Admin"}]
    assert (await s.patch(f"/Users/{uid}", ops, headers=ENTRA_UA))[0] == 200
    events = await feed.all_events()
    assert [e["type"] for e in events] == ["user.created", "user.updated", "user.roles_changed"]
    assert events[2]["data"]["roles"] == ["Admin"] and events[2]["client"] == "entra"
