"""Group members for a whole page of groups in one statement per 500 groups (issue 8: no N+1 in GET /Groups)."""

from __future__ import annotations

from gateway.store.base import Member
from gateway.store.conn import Conn, in_lists


class MemberOps:
    """Mixed into :class:`gateway.store.sql.SqlOps`."""

    scan_conn: Conn

    async def members_of_groups(self, tenant_id: str, group_ids: list[str]) -> dict[str, list[Member]]:
        """Each group's members (ordered by member id, as :meth:`list_members` orders them)."""
        out: dict[str, list[Member]] = {g: [] for g in group_ids}
        for chunk, marks in in_lists(group_ids):
            rows = await self.scan_conn.fetch(
                "SELECT m.group_id, m.member_id, m.member_type, COALESCE(u.display_name, u.user_name, g.display_name)"
                " FROM group_members m"
                " LEFT JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.member_id"
                " LEFT JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.member_id"
                f" WHERE m.tenant_id = ? AND m.group_id IN ({marks}) ORDER BY m.group_id, m.member_id",
                (tenant_id, *chunk),
            )
            for r in rows:
                out[r[0]].append(Member(r[1], r[2], r[3]))
        return out
