"""The change feed's SQL: the outbox (events written in the change's own transaction), webhook
endpoints and their deliveries. ``SqlOps`` inherits :class:`OutboxOps`; placeholders are ``?``.

Sequences: each tenant has one ``outbox_heads`` row. A write transaction buffers its events
(:meth:`OutboxOps.emit`) and the backend calls :meth:`OutboxOps.flush_outbox` just before COMMIT,
which takes the next numbers with one ``UPDATE ... RETURNING`` on that row and inserts the events in
one statement. The row stays locked until the transaction ends, so on PostgreSQL a second writer of
the same tenant waits there and takes its numbers only after the first has committed (or rolled
back, releasing its numbers): per tenant, sequences become visible in order and without gaps, and a
reader that has seen sequence N can never later see a committed event below N. Flushing last keeps
the lock short and makes it the last lock every writer takes (no lock-order deadlock). On SQLite the
single writer gives the same order for free.
"""

from __future__ import annotations

from typing import Any, Sequence

from gateway.store.base import DeliveryRow, Member, OutboxEvent, ResourceRow, WebhookRow
from gateway.store.conn import Conn, dumps as _dumps, in_lists, loads as _loads, newest_first
from gateway.store.rows import MEMBER_INSERT_COLUMNS, MEMBER_VALUES, member_values

_EVENT_COLS = "seq, id, type, occurred_at, source, client, data"
_HOOK_COLS = "id, tenant_id, url, events, description, enabled, secret, cursor_seq, failing, created, updated"
_DELIVERY_COLS = (
    "id, tenant_id, endpoint_id, event_seq, event_id, event_type, status, attempts, last_status, last_error,"
    " next_attempt_at, lease_until, lease_token, created, completed_at"
)
_CHUNK = 500
# Events per INSERT when a transaction writes many (a 20,000-member add): each chunk's statement runs
# on the writer's thread, and the rows of the next are built meanwhile.
_FLUSH_CHUNK = 2000
# The head update and the inserts as one statement (a data-modifying CTE; SQLite has none): event i
# of n gets last_seq - n + i, i counted from 1 by WITH ORDINALITY.
_PG_FLUSH = (
    "WITH h AS (INSERT INTO outbox_heads (tenant_id, last_seq) VALUES (?, ?) ON CONFLICT (tenant_id)"
    " DO UPDATE SET last_seq = outbox_heads.last_seq + excluded.last_seq RETURNING last_seq)"
    " INSERT INTO outbox (tenant_id, seq, id, type, occurred_at, source, client, data)"
    " SELECT ?, h.last_seq - ? + v.ord, v.id, v.type, v.occurred_at, v.source, v.client, v.data::jsonb"
    " FROM h, unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])"
    " WITH ORDINALITY AS v(id, type, occurred_at, source, client, data, ord) RETURNING seq"
)


def _event(tenant_id: str, r: Any) -> OutboxEvent:
    return OutboxEvent(seq=r[0], id=r[1], type=r[2], occurred_at=r[3], source=r[4], client=r[5], data=_loads(r[6]),
                       tenant_id=tenant_id)


def _hook(r: Any) -> WebhookRow:
    return WebhookRow(id=r[0], tenant_id=r[1], url=r[2], events=_loads(r[3]), description=r[4], enabled=bool(r[5]),
                      secret=r[6], cursor_seq=r[7], failing=bool(r[8]), created=r[9], updated=r[10])


def _delivery(r: Any) -> DeliveryRow:
    return DeliveryRow(*tuple(r)[:15])


class OutboxOps:
    """Outbox, webhook endpoint and delivery statements (mixed into ``SqlOps``)."""

    conn: Conn
    scan_conn: Conn
    row_lock: str
    # False when the gateway runs with events switched off (SCIM_GATEWAY_EVENTS_ENABLED=false).
    emitting: bool = True
    _outbox: list[OutboxEvent] | None = None

    @property
    def _skip_locked(self) -> str:
        # Only a backend with concurrent writers passes a row lock (PostgreSQL); SQLite's writer is alone.
        return " FOR UPDATE SKIP LOCKED" if self.row_lock else ""

    # writing events ------------------------------------------------------------------------------
    def emit(self, events: Sequence[OutboxEvent]) -> None:
        """Buffer events of this transaction; they are numbered and written just before it commits."""
        if not self.emitting or not events:
            return
        if self._outbox is None:
            self._outbox = []
        self._outbox.extend(events)

    async def flush_outbox(self) -> int:
        """Number and insert the buffered events (the backend calls this right before COMMIT)."""
        pending, self._outbox = self._outbox, None
        if not pending:
            return 0
        by_tenant: dict[str, list[OutboxEvent]] = {}
        for e in pending:
            by_tenant.setdefault(e.tenant_id, []).append(e)
        for tenant_id in sorted(by_tenant):  # one order in every process: no deadlock between two tenants' heads
            events = by_tenant[tenant_id]
            if self.row_lock:  # PostgreSQL: numbers and rows in one round trip, whatever the number of events
                rows = await self.conn.fetch(_PG_FLUSH, (
                    tenant_id, len(events), tenant_id, len(events),
                    [e.id for e in events], [e.type for e in events], [e.occurred_at for e in events],
                    [e.source for e in events], [e.client for e in events], [_dumps(e.data) for e in events]))
                first = min(int(r[0]) for r in rows)
                for i, e in enumerate(events):
                    e.seq = first + i
                continue
            r = await self.conn.fetchrow(
                "INSERT INTO outbox_heads (tenant_id, last_seq) VALUES (?, ?) ON CONFLICT (tenant_id)"
                " DO UPDATE SET last_seq = outbox_heads.last_seq + excluded.last_seq RETURNING last_seq",
                (tenant_id, len(events)),
            )
            assert r is not None  # an upsert with RETURNING always returns its row
            first = int(r[0]) - len(events) + 1
            for i, e in enumerate(events):
                e.seq = first + i
            for at in range(0, len(events), _FLUSH_CHUNK):  # chunks: the loop gets control between them
                await self.conn.executemany(
                    "INSERT INTO outbox (tenant_id, seq, id, type, occurred_at, source, client, data)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(tenant_id, e.seq, e.id, e.type, e.occurred_at, e.source, e.client, _dumps(e.data))
                     for e in events[at:at + _FLUSH_CHUNK]],
                )
        return len(pending)

    async def insert_members(self, tenant_id: str, group_id: str, members: list[Member]) -> list[str]:
        """Add memberships; returns exactly the ids whose rows were inserted (not those already members)."""
        inserted: list[str] = []
        # In key order, each insert lands next to the last in both indexes (random UUIDs scatter them):
        # a 20,000-member add writes about twice as fast.
        members = sorted(members, key=lambda m: m.value)
        for i in range(0, len(members), _CHUNK):
            chunk = members[i : i + _CHUNK]
            values = ", ".join(MEMBER_VALUES for _ in chunk)
            rows = await self.conn.fetch(
                f"INSERT INTO group_members {MEMBER_INSERT_COLUMNS} VALUES {values} ON CONFLICT DO NOTHING RETURNING member_id",
                [x for m in chunk for x in member_values(tenant_id, group_id, m.value, m.type)],
            )
            inserted.extend(r[0] for r in rows)
        return inserted

    async def users_by_ids(self, tenant_id: str, user_ids: list[str]) -> dict[str, ResourceRow]:
        out: dict[str, ResourceRow] = {}
        for chunk, marks in in_lists(user_ids, _CHUNK):
            rows = await self.conn.fetch(
                "SELECT seq, id, data, version, created, last_modified, roles, provisioned_by, active FROM users"
                f" WHERE tenant_id = ? AND id IN ({marks})",
                (tenant_id, *chunk),
            )
            for r in rows:
                out[r[1]] = ResourceRow(seq=r[0], id=r[1], data=_loads(r[2]), version=r[3], created=r[4],
                                        last_modified=r[5], roles=_loads(r[6]), provisioned_by=r[7], active=bool(r[8]))
        return out

    # reading events ------------------------------------------------------------------------------
    async def read_outbox(
        self, tenant_id: str, *, after: int | None, limit: int, types: Sequence[str] = ()
    ) -> tuple[int, int, list[OutboxEvent]]:
        """``(last_seq, pruned_seq, events)``: events after ``after`` (default: the oldest kept), oldest first.

        One statement, so the head, the retention mark and the events come from one snapshot: every
        event at or below ``last_seq`` is committed (sequences commit in order), hence a page shorter
        than ``limit`` holds every matching event up to ``last_seq``.
        """
        where = "e.tenant_id = h.tenant_id AND e.seq > " + ("?" if after is not None else "h.pruned_seq")
        params: list[Any] = [] if after is None else [after]
        if types:
            where += f" AND e.type IN ({', '.join('?' * len(types))})"
            params.extend(types)
        rows = await self.scan_conn.fetch(
            f"SELECT h.last_seq, h.pruned_seq, {', '.join('e.' + c.strip() for c in _EVENT_COLS.split(','))}"
            f" FROM outbox_heads h LEFT JOIN outbox e ON {where} WHERE h.tenant_id = ? ORDER BY e.seq LIMIT ?",
            (*params, tenant_id, limit),
        )
        if not rows:
            return 0, 0, []
        head, pruned = int(rows[0][0]), int(rows[0][1])
        return head, pruned, [_event(tenant_id, tuple(r)[2:]) for r in rows if r[2] is not None]

    async def prune_outbox(self, tenant_id: str, *, before: str) -> int:
        """Delete the tenant's events that occurred before ``before`` and move the retention mark past them."""
        r = await self.conn.fetchrow(
            "SELECT max(seq) FROM outbox WHERE tenant_id = ? AND occurred_at < ?", (tenant_id, before)
        )
        if not r or r[0] is None:
            return 0
        upto = int(r[0])
        n = int(await self.conn.execute("DELETE FROM outbox WHERE tenant_id = ? AND seq <= ?", (tenant_id, upto)))
        await self.conn.execute(
            "UPDATE outbox_heads SET pruned_seq = ? WHERE tenant_id = ? AND pruned_seq < ?", (upto, tenant_id, upto)
        )
        await self.conn.execute(
            "DELETE FROM webhook_deliveries WHERE tenant_id = ? AND status <> 'pending' AND event_seq <= ?",
            (tenant_id, upto),
        )
        return n

    async def outbox_tenants(self) -> list[str]:
        return [r[0] for r in await self.scan_conn.fetch("SELECT tenant_id FROM outbox_heads ORDER BY tenant_id")]

    async def feed_stats(self) -> dict[str, Any]:
        """Counts for metrics: events kept, and webhook deliveries by status (with the oldest due pending)."""
        events = await self.scan_conn.fetchrow("SELECT count(*) FROM outbox")
        by_status = {r[0]: int(r[1]) for r in await self.scan_conn.fetch(
            "SELECT status, count(*) FROM webhook_deliveries GROUP BY status")}
        oldest = await self.scan_conn.fetchrow(
            "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'")
        return {
            "events": int(events[0]) if events else 0,
            "deliveries_pending": by_status.get("pending", 0),
            "deliveries_succeeded": by_status.get("succeeded", 0),
            "deliveries_failed": by_status.get("failed", 0),
            "oldest_pending_due": oldest[0] if oldest else None,
        }

    # webhook endpoints ---------------------------------------------------------------------------
    async def insert_webhook(self, row: WebhookRow) -> None:
        head = await self.conn.fetchrow("SELECT last_seq FROM outbox_heads WHERE tenant_id = ?", (row.tenant_id,))
        row.cursor_seq = int(head[0]) if head else 0  # a new endpoint gets the events committed from now on
        await self.conn.execute(
            f"INSERT INTO webhook_endpoints ({_HOOK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.id, row.tenant_id, row.url, _dumps(row.events), row.description, row.enabled, row.secret,
             row.cursor_seq, row.failing, row.created, row.updated),
        )

    async def get_webhook(self, tenant_id: str, webhook_id: str) -> WebhookRow | None:
        r = await self.conn.fetchrow(
            f"SELECT {_HOOK_COLS} FROM webhook_endpoints WHERE tenant_id = ? AND id = ?", (tenant_id, webhook_id)
        )
        return _hook(r) if r else None

    async def list_webhooks(self, tenant_id: str) -> list[WebhookRow]:
        rows = await self.conn.fetch(
            f"SELECT {_HOOK_COLS} FROM webhook_endpoints WHERE tenant_id = ? ORDER BY created, id", (tenant_id,)
        )
        return [_hook(r) for r in rows]

    async def update_webhook(self, tenant_id: str, webhook_id: str, **fields: Any) -> bool:
        allowed = {"url", "events", "description", "enabled", "secret", "failing", "updated"}
        if set(fields) - allowed:
            raise ValueError(f"unknown webhook fields {sorted(set(fields) - allowed)}")
        values = [_dumps(v) if k == "events" else v for k, v in fields.items()]
        sets = ", ".join(f"{k} = ?" for k in fields)
        n = await self.conn.execute(
            f"UPDATE webhook_endpoints SET {sets} WHERE tenant_id = ? AND id = ?", (*values, tenant_id, webhook_id)
        )
        return int(n) > 0

    async def delete_webhook(self, tenant_id: str, webhook_id: str) -> bool:
        await self.conn.execute(
            "DELETE FROM webhook_deliveries WHERE tenant_id = ? AND endpoint_id = ?", (tenant_id, webhook_id)
        )
        n = await self.conn.execute("DELETE FROM webhook_endpoints WHERE tenant_id = ? AND id = ?", (tenant_id, webhook_id))
        return int(n) > 0

    # deliveries ----------------------------------------------------------------------------------
    async def webhooks_behind(self) -> list[tuple[str, str]]:
        """(tenant_id, endpoint id) of enabled endpoints whose cursor is behind their tenant's head."""
        rows = await self.scan_conn.fetch(
            "SELECT w.tenant_id, w.id FROM webhook_endpoints w JOIN outbox_heads h ON h.tenant_id = w.tenant_id"
            " WHERE w.enabled = ? AND w.cursor_seq < h.last_seq ORDER BY w.tenant_id, w.id",
            (True,),
        )
        return [(r[0], r[1]) for r in rows]

    async def fan_out(self, tenant_id: str, webhook_id: str, *, when: str, new_id: Any, limit: int = 1000) -> int:
        """Turn the endpoint's next events into pending deliveries and advance its cursor; returns events read.

        The endpoint row is locked (skipped if another process holds it), so two processes never fan
        out the same range; events are read in sequence order and only committed ones exist.
        """
        r = await self.conn.fetchrow(
            "SELECT cursor_seq, events, enabled FROM webhook_endpoints WHERE tenant_id = ? AND id = ?"
            + self._skip_locked,
            (tenant_id, webhook_id),
        )
        if not r or not r[2]:
            return 0
        cursor, wanted = int(r[0]), set(_loads(r[1]) or ())
        _, pruned, events = await self._read_events_tx(tenant_id, cursor, limit)
        if not events:
            if pruned > cursor:  # events expired while the endpoint was behind: resume after them
                await self._set_cursor(tenant_id, webhook_id, pruned)
            return 0
        due = [e for e in events if not wanted or e.type in wanted]
        if due:
            await self.conn.executemany(
                "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_seq, event_id, event_type, status,"
                " next_attempt_at, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(new_id(), tenant_id, webhook_id, e.seq, e.id, e.type, "pending", when, when) for e in due],
            )
        await self._set_cursor(tenant_id, webhook_id, events[-1].seq)
        return len(events)

    async def _read_events_tx(self, tenant_id: str, after: int, limit: int) -> tuple[int, int, list[OutboxEvent]]:
        rows = await self.conn.fetch(
            f"SELECT h.pruned_seq, {', '.join('e.' + c.strip() for c in _EVENT_COLS.split(','))}"
            " FROM outbox_heads h LEFT JOIN outbox e ON e.tenant_id = h.tenant_id AND e.seq > ?"
            " WHERE h.tenant_id = ? ORDER BY e.seq LIMIT ?",
            (after, tenant_id, limit),
        )
        if not rows:
            return 0, 0, []
        return 0, int(rows[0][0]), [_event(tenant_id, tuple(r)[1:]) for r in rows if r[1] is not None]

    async def _set_cursor(self, tenant_id: str, webhook_id: str, seq: int) -> None:
        await self.conn.execute(
            "UPDATE webhook_endpoints SET cursor_seq = ? WHERE tenant_id = ? AND id = ? AND cursor_seq < ?",
            (seq, tenant_id, webhook_id, seq),
        )

    async def claim_deliveries(
        self, *, when: str, lease_until: str, token: str, limit: int, batch: int = 1
    ) -> list[DeliveryRow]:
        """Lease the due head delivery of up to ``limit`` endpoints, each with up to ``batch - 1`` of the
        pending deliveries that follow it, in sequence order (the worker sends them one after another).

        A delivery is due when pending, its next attempt has come and no live lease holds it; it is
        the head when no pending delivery of its endpoint has a lower sequence. PostgreSQL skips heads
        another process is claiming (``FOR UPDATE SKIP LOCKED``); once a head is leased no other
        process can claim anything of that endpoint (its later deliveries are not heads), until the
        attempts are recorded or the lease runs out (a killed process).
        """
        lock = " FOR UPDATE OF d SKIP LOCKED" if self.row_lock else ""
        rows = await self.conn.fetch(
            f"SELECT d.id, d.endpoint_id, d.event_seq FROM webhook_deliveries d"
            " JOIN webhook_endpoints w ON w.id = d.endpoint_id"
            " WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)"
            " AND w.enabled = ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries x WHERE x.endpoint_id = d.endpoint_id"
            " AND x.status = 'pending' AND x.event_seq < d.event_seq)"
            f" ORDER BY d.next_attempt_at, d.event_seq LIMIT ?{lock}",
            (when, when, True, limit),
        )
        ids = [r[0] for r in rows]
        for head in rows if batch > 1 else ():
            followers = await self.conn.fetch(
                "SELECT id, next_attempt_at, lease_until FROM webhook_deliveries WHERE endpoint_id = ?"
                " AND status = 'pending' AND event_seq > ? ORDER BY event_seq LIMIT ?",
                (head[1], head[2], batch - 1),
            )
            for f in followers:  # contiguous only: stop at one that waits for a retry or is held
                if f[1] > when or (f[2] is not None and f[2] > when):
                    break
                ids.append(f[0])
        if not ids:
            return []
        claimed: list[DeliveryRow] = []
        for chunk, marks in in_lists(ids, _CHUNK):
            claimed += [_delivery(r) for r in await self.conn.fetch(
                f"UPDATE webhook_deliveries SET lease_until = ?, lease_token = ?, attempts = attempts + 1"
                f" WHERE id IN ({marks}) RETURNING {_DELIVERY_COLS}",
                (lease_until, token, *chunk),
            )]
        return sorted(claimed, key=lambda d: (d.endpoint_id, d.event_seq))

    async def renew_leases(self, delivery_ids: list[str], token: str, *, lease_until: str | None) -> int:
        """Extend this worker's leases (``lease_until``), or give back unattempted ones (None)."""
        if not delivery_ids:
            return 0
        marks = ", ".join("?" * len(delivery_ids))
        if lease_until is None:
            sql = (f"UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL, attempts = attempts - 1"
                   f" WHERE id IN ({marks}) AND lease_token = ?")
            return int(await self.conn.execute(sql, (*delivery_ids, token)))
        return int(await self.conn.execute(
            f"UPDATE webhook_deliveries SET lease_until = ? WHERE id IN ({marks}) AND lease_token = ?",
            (lease_until, *delivery_ids, token)))

    async def outbox_events(self, tenant_id: str, seqs: list[int]) -> dict[int, OutboxEvent]:
        out: dict[int, OutboxEvent] = {}
        for chunk, marks in in_lists(seqs, _CHUNK):
            for r in await self.conn.fetch(
                f"SELECT {_EVENT_COLS} FROM outbox WHERE tenant_id = ? AND seq IN ({marks})", (tenant_id, *chunk)
            ):
                out[int(r[0])] = _event(tenant_id, r)
        return out

    async def finish_delivery(
        self,
        delivery_id: str,
        token: str,
        *,
        status: str,
        when: str,
        next_attempt_at: str | None = None,
        http_status: int | None = None,
        error: str | None = None,
    ) -> bool:
        """Record an attempt's outcome if this worker still holds the lease; ``status`` is the new status."""
        n = await self.conn.execute(
            "UPDATE webhook_deliveries SET status = ?, last_status = ?, last_error = ?, next_attempt_at = ?,"
            " lease_until = NULL, lease_token = NULL, completed_at = ? WHERE id = ? AND lease_token = ?",
            (status, http_status, error, next_attempt_at or when, when if status != "pending" else None,
             delivery_id, token),
        )
        return int(n) > 0

    async def list_deliveries(
        self, tenant_id: str, webhook_id: str, *, status: str | None, limit: int, before_seq: int | None
    ) -> list[DeliveryRow]:
        sql, params = newest_first(
            f"SELECT {_DELIVERY_COLS} FROM webhook_deliveries WHERE tenant_id = ? AND endpoint_id = ?",
            (tenant_id, webhook_id), where=(("status", status),), seq="event_seq", before=before_seq, limit=limit,
        )
        return [_delivery(r) for r in await self.conn.fetch(sql, params)]

    async def get_delivery(self, tenant_id: str, webhook_id: str, delivery_id: str) -> DeliveryRow | None:
        r = await self.conn.fetchrow(
            f"SELECT {_DELIVERY_COLS} FROM webhook_deliveries WHERE tenant_id = ? AND endpoint_id = ? AND id = ?",
            (tenant_id, webhook_id, delivery_id),
        )
        return _delivery(r) if r else None

    async def retry_delivery(self, tenant_id: str, webhook_id: str, delivery_id: str, *, when: str) -> bool:
        """Make a delivery due now with a fresh attempt budget (a manual retry)."""
        n = await self.conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_until = NULL,"
            " lease_token = NULL, completed_at = NULL WHERE tenant_id = ? AND endpoint_id = ? AND id = ?",
            (when, tenant_id, webhook_id, delivery_id),
        )
        return int(n) > 0
