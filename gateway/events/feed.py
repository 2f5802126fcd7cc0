"""Reading the change feed by cursor, and its retention. Shared by the events API and the CLI.

A cursor is a position in one tenant's sequence ("everything up to N has been read"). Sequences
commit in order (see :mod:`gateway.store.outbox`), so reading ``seq > N`` in order never skips an
event that commits later, and ``next_cursor`` is always returned: a consumer stores it after
processing the page and asks again later for what is new. Retention removes events by age and
remembers how far it went; a cursor below that mark has lost events and gets 410, never a gap.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from gateway.clock import format_time
from gateway.events.outbox import EVENT_TYPES, event_body
from gateway.identity.management import AdminError, require_tenant
from gateway.settings import Settings
from gateway.store.base import Store

log = structlog.get_logger("scim_gateway.events")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"e": seq}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["e"]
        if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
            return seq
    except (ValueError, KeyError, TypeError):
        pass
    raise AdminError(400, "invalid_cursor", "cursor is not valid: pass back a next_cursor this API returned")


def parse_limit(raw: Any) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise AdminError(400, "validation_error", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return value


def parse_types(raw: str | None) -> list[str]:
    if not raw:
        return []
    types = list(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise AdminError(400, "validation_error",
                         f"unknown event type {', '.join(unknown)}: use one or more of {', '.join(EVENT_TYPES)}")
    return types


async def read_events(
    store: Store, tenant_id: str, *, after: str | None = None, limit: int = DEFAULT_LIMIT, types: list[str] | None = None
) -> dict[str, Any]:
    """``{"data": [...], "next_cursor": ...}``: the tenant's events after ``after``, oldest first."""
    position = decode_cursor(after) if after else None
    await require_tenant(store, tenant_id)
    async with store.read() as r:
        head, pruned, events = await r.read_outbox(tenant_id, after=position, limit=limit, types=types or ())
    if position is not None and position < pruned:
        raise AdminError(410, "cursor_expired",
                         f"events after this cursor are older than the retention period and were removed (the feed "
                         f"now starts after sequence {pruned}); read the directory again and continue without 'after'")
    if position is not None and position > head:
        raise AdminError(400, "invalid_cursor", "cursor is ahead of this tenant's feed: it belongs to another tenant "
                                                "or another database")
    start = position if position is not None else pruned
    if len(events) == limit:
        nxt = events[-1].seq
    else:  # the page holds every matching event up to the head read in the same snapshot
        nxt = max(head, start, events[-1].seq if events else 0)
    return {"data": [event_body(e) for e in events], "next_cursor": encode_cursor(nxt)}


# retention ---------------------------------------------------------------------------------------
async def enforce_retention(store: Store, settings: Settings, *, at: datetime | None = None) -> dict[str, int]:
    """Remove every tenant's events older than the retention period; returns events removed per tenant."""
    moment = at or datetime.now(timezone.utc)
    cutoff = format_time(moment - timedelta(days=settings.events_retention_days))
    async with store.read() as r:
        tenants = await r.outbox_tenants()
    removed: dict[str, int] = {}
    for tenant_id in tenants:  # one short transaction per tenant
        async with store.write() as tx:
            n = await tx.prune_outbox(tenant_id, before=cutoff)
        if n:
            removed[tenant_id] = n
            log.info("events_pruned", tenant=tenant_id, removed=n)
    return removed


async def retention_loop(store: Store, settings: Settings) -> None:
    while True:
        try:
            await enforce_retention(store, settings)
        except Exception:  # retried next round; must not kill the task
            log.exception("events_retention_failed")
        await asyncio.sleep(settings.events_retention_interval_seconds)


__all__ = ["decode_cursor", "encode_cursor", "enforce_retention", "parse_limit", "parse_types", "read_events"]
