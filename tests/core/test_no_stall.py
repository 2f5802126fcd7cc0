"""One big write never holds the event loop: while a group PATCH adds thousands of members, the loop
runs other tasks (other tenants' requests) between the pieces of the work.

Counted in units of work, not in time: the rows written by member and event inserts and the events
built, while a task that does nothing but hand the loop back notes how many units were done between
two of its turns. On the old main a 3,000-member add built all 3,000 events and wrote them in one
inline statement with no turn for anyone else (and 20,000 members stalled every tenant for seconds);
now events are built in chunks of 1,000 with a turn between, and every big statement runs on the
writer's thread while the loop serves others.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.identity.tenants import create_tenant
from gateway.plugin_manager import PluginHost
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store, sqlite as sqlite_backend

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEMBERS = 3_000
BIG = ("INSERT INTO group_members", "INSERT INTO outbox ")


def _connection_classes() -> list[type]:
    try:
        from gateway.store.postgres import _Conn  # needs asyncpg
    except ImportError:
        return [sqlite_backend._WriteConn]
    return [sqlite_backend._WriteConn, _Conn]


def _counting(monkeypatch: pytest.MonkeyPatch, counter: dict[str, int]) -> None:
    for cls in _connection_classes():
        for name in ("fetch", "execute", "executemany"):
            original = getattr(cls, name)

            async def wrapped(self: Any, sql: str, params: Any = (), *, _original: Any = original, _name: str = name) -> Any:
                if sql.lstrip().startswith(BIG):
                    rows = len(params) if _name == "executemany" else len(params) // 4
                    counter["since_turn"] += rows
                    counter["statements"] += 1
                return await _original(self, sql, params)

            monkeypatch.setattr(cls, name, wrapped)
    from gateway.store.outbox import OutboxOps

    emit = OutboxOps.emit

    def counted_emit(self: Any, events: Any) -> None:
        counter["since_turn"] += len(events)
        emit(self, events)

    monkeypatch.setattr(OutboxOps, "emit", counted_emit)


async def test_a_big_member_add_hands_the_loop_back(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = await create_tenant(store, "Big", idp="generic", scim_enabled=True)
    gw = Gateway(Settings(public_url="https://scim.example.test"), store, PluginHost(load_entrypoints=False))
    svc = gw.service
    ids = []
    for j in range(MEMBERS):
        r = await svc.create(tenant, svc.types["User"], {"schemas": [USER], "userName": f"u{j}"}, context={"client": "generic"})
        ids.append(r.body["id"])
    group = await svc.create(tenant, svc.types["Group"], {"schemas": [GROUP], "displayName": "All"}, context={"client": "generic"})
    # smaller pieces than the defaults (1,000 events built, 2,000 written per piece), so a small add shows them
    monkeypatch.setattr("gateway.events.outbox._YIELD_EVERY", 500, raising=False)
    monkeypatch.setattr("gateway.store.outbox._FLUSH_CHUNK", 500, raising=False)
    counter = {"since_turn": 0, "statements": 0}
    _counting(monkeypatch, counter)
    longest = 0
    running = True

    async def neighbour() -> None:
        nonlocal longest
        while running:
            await asyncio.sleep(0)
            longest = max(longest, counter["since_turn"])
            counter["since_turn"] = 0

    task = asyncio.create_task(neighbour())
    await svc.patch(tenant, svc.types["Group"], group.body["id"],
                    {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}]},
                    context={"client": "generic"})
    running = False
    await task
    async with store.read() as r:
        assert len(await r.existing_ids(tenant.id, ids)) == MEMBERS
    assert counter["statements"] >= 6  # the add really was cut in pieces (500 members per insert)
    # the largest stretch: a piece of events built and one of events written, never the whole add
    assert longest <= 1_000, f"{longest} rows and events were handled back to back with no turn for other requests"
