"""Newest-first pages (``list_deliveries``, ``list_events``): the optional filter, the cursor and the
limit together, and nothing of another endpoint or tenant, on every backend."""

from __future__ import annotations

from gateway.clock import now
from gateway.identity.tenants import create_tenant
from gateway.store.base import Store, WebhookRow


def _hook(tenant_id: str, hook_id: str) -> WebhookRow:
    ts = now()
    return WebhookRow(id=hook_id, tenant_id=tenant_id, url="https://hooks.example.test/x", events=[], description="",
                      enabled=True, secret="s", cursor_seq=0, failing=False, created=ts, updated=ts)


async def test_store_deliveries_page_by_status_and_cursor(store: Store) -> None:
    a = (await create_tenant(store, "A", scim_enabled=True)).id
    b = (await create_tenant(store, "B", scim_enabled=True)).id
    statuses = ["failed", "succeeded", "failed", "pending", "failed", "failed"]  # event_seq 1..6
    async with store.write() as tx:
        await tx.insert_webhook(_hook(a, "w1"))
        await tx.insert_webhook(_hook(a, "w2"))
        await tx.insert_webhook(_hook(b, "w3"))
        for endpoint, tenant in (("w1", a), ("w2", a), ("w3", b)):
            for seq, status in enumerate(statuses, 1):
                await tx.conn.execute(
                    "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_seq, event_id, event_type,"
                    " status, next_attempt_at, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (f"{endpoint}-{seq}", tenant, endpoint, seq, f"e{seq}", "user.created", status, now(), now()))
    async with store.read() as r:
        page = await r.list_deliveries(a, "w1", status=None, limit=10, before_seq=None)
        assert [d.id for d in page] == [f"w1-{s}" for s in (6, 5, 4, 3, 2, 1)]
        page = await r.list_deliveries(a, "w1", status="failed", limit=2, before_seq=None)
        assert [d.id for d in page] == ["w1-6", "w1-5"]
        page = await r.list_deliveries(a, "w1", status="failed", limit=2, before_seq=page[-1].event_seq)
        assert [d.id for d in page] == ["w1-3", "w1-1"]
        page = await r.list_deliveries(a, "w1", status="", limit=3, before_seq=4)  # empty status: no filter
        assert [d.id for d in page] == ["w1-3", "w1-2", "w1-1"]
        assert await r.list_deliveries(a, "w1", status="failed", limit=5, before_seq=1) == []
        assert await r.list_deliveries(a, "w3", status=None, limit=5, before_seq=None) == []  # b's endpoint


async def test_store_events_page_by_type_and_cursor(store: Store) -> None:
    a = (await create_tenant(store, "A", scim_enabled=True)).id
    b = (await create_tenant(store, "B", scim_enabled=True)).id
    async with store.write() as tx:
        for i in range(6):
            await tx.insert_event(a, "scim_error" if i % 3 else "scim_provision", now(), {"i": i})
            await tx.insert_event(b, "scim_error", now(), {"i": i, "b": True})
    async with store.read() as r:
        first = await r.list_events(a, type="scim_error", limit=2)
        assert [e.data["i"] for e in first] == [5, 4]
        rest = await r.list_events(a, type="scim_error", limit=10, before_seq=first[-1].seq)
        assert [e.data["i"] for e in rest] == [2, 1]
        assert [e.data["i"] for e in await r.list_events(a, type="", limit=2, before_seq=first[-1].seq)] == [3, 2]
        assert all("b" not in e.data for e in await r.list_events(a, limit=100))
