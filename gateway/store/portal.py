"""Portal links and sessions (issue 9): the SQL behind :mod:`gateway.identity.portal_access`.

Rows hold SHA-256 hashes of the link token and the session id, never the values themselves.
"""

from __future__ import annotations

from gateway.store.base import PortalLinkRow, PortalSessionRow
from gateway.store.conn import Conn


class PortalOps:
    """Mixed into :class:`gateway.store.sql.SqlOps`."""

    conn: Conn

    async def insert_portal_link(self, token_hash: str, tenant_id: str, created: str, expires: str) -> None:
        await self.conn.execute(
            "INSERT INTO portal_links (token_hash, tenant_id, created, expires) VALUES (?, ?, ?, ?)",
            (token_hash, tenant_id, created, expires),
        )

    async def get_portal_link(self, token_hash: str) -> PortalLinkRow | None:
        r = await self.conn.fetchrow(
            "SELECT tenant_id, created, expires, used FROM portal_links WHERE token_hash = ?", (token_hash,)
        )
        return PortalLinkRow(tenant_id=r[0], created=r[1], expires=r[2], used=r[3]) if r else None

    async def use_portal_link(self, token_hash: str, when: str) -> bool:
        """Mark an unused, unexpired link used; False when another request got there first (or it expired)."""
        n = await self.conn.execute(
            "UPDATE portal_links SET used = ? WHERE token_hash = ? AND used IS NULL AND expires > ?",
            (when, token_hash, when),
        )
        return n > 0

    async def insert_portal_session(self, row: PortalSessionRow) -> None:
        await self.conn.execute(
            "INSERT INTO portal_sessions (id_hash, tenant_id, created, last_seen, expires) VALUES (?, ?, ?, ?, ?)",
            (row.id_hash, row.tenant_id, row.created, row.last_seen, row.expires),
        )

    async def get_portal_session(self, id_hash: str) -> PortalSessionRow | None:
        r = await self.conn.fetchrow(
            "SELECT id_hash, tenant_id, created, last_seen, expires FROM portal_sessions WHERE id_hash = ?", (id_hash,)
        )
        return PortalSessionRow(id_hash=r[0], tenant_id=r[1], created=r[2], last_seen=r[3], expires=r[4]) if r else None

    async def touch_portal_session(self, id_hash: str, when: str) -> None:
        await self.conn.execute("UPDATE portal_sessions SET last_seen = ? WHERE id_hash = ?", (when, id_hash))

    async def delete_portal_session(self, id_hash: str) -> bool:
        n = await self.conn.execute("DELETE FROM portal_sessions WHERE id_hash = ?", (id_hash,))
        return n > 0

    async def prune_portal(self, *, now: str, idle_before: str) -> int:
        """Delete expired links and sessions past their absolute or idle timeout."""
        n = await self.conn.execute("DELETE FROM portal_links WHERE expires <= ?", (now,))
        n += await self.conn.execute(
            "DELETE FROM portal_sessions WHERE expires <= ? OR last_seen <= ?", (now, idle_before)
        )
        return n

    async def count_events_since(self, tenant_id: str, type: str, since: str) -> tuple[int, str | None]:
        """How many events of ``type`` were written at or after ``since``, and the newest one's time."""
        r = await self.conn.fetchrow(
            "SELECT count(*), max(created) FROM activity WHERE tenant_id = ? AND type = ? AND created >= ?",
            (tenant_id, type, since),
        )
        return (int(r[0]), r[1]) if r else (0, None)

    async def hourly_event_counts(
        self, tenant_id: str, error_type: str, since: str, until: str
    ) -> list[tuple[str, int, int]]:
        """Per UTC hour in ``[since, until)``: the hour (``YYYY-MM-DDTHH``), all events, events of ``error_type``.

        Stored times are fixed-width UTC text, so the hour is the first 13 characters on both backends;
        hours without events are absent. One grouped query over the window's rows (``activity_tenant_created``).
        """
        rows = await self.conn.fetch(
            "SELECT substr(created, 1, 13) AS hour, count(*), sum(CASE WHEN type = ? THEN 1 ELSE 0 END) "
            "FROM activity WHERE tenant_id = ? AND created >= ? AND created < ? "
            "GROUP BY substr(created, 1, 13)",
            (error_type, tenant_id, since, until),
        )
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]
