"""Reads shaped for the hot path: a User and its groups in one statement (GET /Users/{id}).

``SqlOps`` inherits :class:`FastReadOps`; placeholders are ``?``; the SQL is portable (both backends).
"""

from __future__ import annotations

from gateway.store.base import Member, ResourceRow
from gateway.store.conn import Conn, loads

_USER_COLS = "u.seq, u.id, u.data, u.version, u.created, u.last_modified, u.roles, u.provisioned_by, u.active"


class FastReadOps:
    conn: Conn

    async def get_user_with_groups(self, tenant_id: str, user_id: str) -> tuple[ResourceRow, list[Member]] | None:
        """``get_user`` and ``groups_of_users`` for one user, in one statement (one row per group)."""
        rows = await self.conn.fetch(
            f"SELECT {_USER_COLS}, g.id, g.display_name FROM users u"
            " LEFT JOIN group_members m ON m.tenant_id = u.tenant_id AND m.member_id = u.id"
            " LEFT JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id"
            " WHERE u.tenant_id = ? AND u.id = ? ORDER BY g.display_name_ci, g.id",
            (tenant_id, user_id),
        )
        if not rows:
            return None
        r = rows[0]
        row = ResourceRow(seq=r[0], id=r[1], data=loads(r[2]), version=r[3], created=r[4], last_modified=r[5],
                          roles=loads(r[6]), provisioned_by=r[7], active=bool(r[8]))
        groups = [Member(x[9], "direct", x[10]) for x in rows if x[9] is not None]
        return row, groups


__all__ = ["FastReadOps"]
