"""Activity retention by size (hardening): each event stores its size; pruning keeps the newest events
whose sizes sum to at most the tenant's byte budget. Mixed into :class:`gateway.store.sql.SqlOps`."""

from __future__ import annotations

from gateway.store.conn import Conn


class ActivitySizeOps:
    conn: Conn

    async def prune_events_by_size(self, tenant_id: str, max_bytes: int) -> int:
        """Delete a tenant's oldest events until the rest take at most ``max_bytes``; returns how many went."""
        r = await self.conn.fetchrow(
            "SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS running FROM activity"
            " WHERE tenant_id = ?) t WHERE running > ? ORDER BY seq DESC LIMIT 1",
            (tenant_id, max_bytes),
        )
        if r is None:
            return 0
        return await self.conn.execute("DELETE FROM activity WHERE tenant_id = ? AND seq <= ?", (tenant_id, r[0]))
