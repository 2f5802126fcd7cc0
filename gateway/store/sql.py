"""The SQL both backends share. Placeholders are ``?``; the PostgreSQL connection renumbers them.

A backend supplies a :class:`Conn` (fetch/execute over one connection) and this module supplies
every query, so the contract suite exercises the same statements on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.store.base import (
    ApiKeyRow,
    EventRow,
    Member,
    Page,
    Query,
    ResourceRow,
    TenantRow,
)
from gateway.store.activity_size import ActivitySizeOps
from gateway.store.conn import Conn as Conn, dumps, in_lists, loads, newest_first
from gateway.store.fastread import FastReadOps
from gateway.store.members import MemberOps
from gateway.store.ops import OpsSql
from gateway.store.outbox import OutboxOps
from gateway.store.portal import PortalOps
from gateway.store.schemas import SchemaOps
from gateway.store.rows import (MEMBER_INSERT_COLUMNS, MEMBER_VALUES, fold, group_columns, member_values, user_columns,
                                user_email_rows)


_TENANT_COLS = "id, name, idp, scim_enabled, log_successful_events, role_mapping, settings, created, schema_version"
_USER_COLS = "seq, id, data, version, created, last_modified, roles, provisioned_by, active"
_USER_RAW_COLS = "seq, id, data, version, created, last_modified"
_GROUP_COLS = "seq, id, data, version, created, last_modified"
_JSON_TENANT_FIELDS = {"role_mapping", "settings"}
_TENANT_FIELDS = {"name", "idp", "scim_enabled", "log_successful_events", "role_mapping", "settings"}


def _tenant(r: Any) -> TenantRow:
    return TenantRow(
        id=r[0],
        name=r[1],
        idp=r[2],
        scim_enabled=bool(r[3]),
        log_successful_events=bool(r[4]),
        role_mapping=loads(r[5]),
        settings=loads(r[6]),
        created=r[7],
        schema_version=int(r[8] or 0),
    )


def _key(r: Any) -> ApiKeyRow:
    return ApiKeyRow(id=r[0], tenant_id=r[1], name=r[2], prefix=r[3], created=r[4], last_used=r[5], revoked=r[6])


def _user(r: Any) -> ResourceRow:
    return ResourceRow(
        seq=r[0],
        id=r[1],
        data=loads(r[2]),
        version=r[3],
        created=r[4],
        last_modified=r[5],
        roles=loads(r[6]),
        provisioned_by=r[7],
        active=bool(r[8]),
    )


def _user_raw(r: Any) -> ResourceRow:
    """A user row (``_USER_RAW_COLS``) for rendering straight from its stored text: ``data`` is not decoded,
    and roles, provisioned_by and active, which no rendering reads, are not read (they keep their defaults)."""
    return ResourceRow(seq=r[0], id=r[1], data={}, version=r[3], created=r[4], last_modified=r[5], raw=r[2])


def _group(r: Any) -> ResourceRow:
    return ResourceRow(seq=r[0], id=r[1], data=loads(r[2]), version=r[3], created=r[4], last_modified=r[5])


# Candidates of a substring index (Query.narrow) up to this many are bound as values: the query is
# then bounded rowid lookups, fit for the point-read path.
_BOUND_CANDIDATES = 1000
# groups_of_users reads a seq range instead of probing each user when the range holds at most this
# many seqs per user asked for (other tenants' and filtered-out users share the seq space)
_RANGE_SPREAD = 4


class SqlOps(OpsSql, OutboxOps, PortalOps, SchemaOps, FastReadOps, MemberOps, ActivitySizeOps):
    """Every read and write of the store, over one connection (inside a transaction for writes)."""

    def __init__(self, conn: Conn, *, row_lock: str = "", scan_conn: Conn | None = None) -> None:
        self.conn = conn
        # Statements whose cost grows with the data (list queries, member lists) run here, so a backend
        # may serve point lookups on a cheaper path (SQLite: synchronously) without a scan ever doing so.
        self.scan_conn = scan_conn or conn
        # Appended to get_user/get_group. A backend whose writers run concurrently (PostgreSQL:
        # " FOR NO KEY UPDATE") passes it inside write() so a resource's read-modify-write (read,
        # apply PATCH, write version + 1) can't interleave with another process's and lose an update.
        self.row_lock = row_lock
        self.share_lock = " FOR KEY SHARE" if row_lock else ""

    # tenants -------------------------------------------------------------------------------
    async def get_tenant(self, tenant_id: str) -> TenantRow | None:
        r = await self.conn.fetchrow(f"SELECT {_TENANT_COLS} FROM tenants WHERE id = ?", (tenant_id,))
        return _tenant(r) if r else None

    async def list_tenants(self) -> list[TenantRow]:
        return [_tenant(r) for r in await self.conn.fetch(f"SELECT {_TENANT_COLS} FROM tenants ORDER BY created, id")]

    async def insert_tenant(self, row: TenantRow) -> None:
        await self.conn.execute(
            f"INSERT INTO tenants ({_TENANT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.name,
                row.idp,
                row.scim_enabled,
                row.log_successful_events,
                dumps(row.role_mapping),
                dumps(row.settings),
                row.created,
                row.schema_version,
            ),
        )

    async def update_tenant(self, tenant_id: str, **fields: Any) -> None:
        unknown = set(fields) - _TENANT_FIELDS
        if unknown:
            raise ValueError(f"unknown tenant fields {sorted(unknown)}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [dumps(v) if k in _JSON_TENANT_FIELDS else v for k, v in fields.items()]
        await self.conn.execute(f"UPDATE tenants SET {sets} WHERE id = ?", (*values, tenant_id))

    # api keys ------------------------------------------------------------------------------
    async def insert_api_key(self, row: ApiKeyRow, key_hash: str) -> None:
        await self.conn.execute(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, created) VALUES (?, ?, ?, ?, ?, ?)",
            (row.id, row.tenant_id, row.name, key_hash, row.prefix, row.created),
        )

    async def find_api_key_tenant(self, key_hash: str) -> tuple[ApiKeyRow, str, TenantRow] | None:
        """The key, its stored hash and its tenant in one statement (the per-request authentication)."""
        tcols = ", ".join("t." + c.strip() for c in _TENANT_COLS.split(","))
        r = await self.conn.fetchrow(
            "SELECT k.id, k.tenant_id, k.name, k.prefix, k.created, k.last_used, k.revoked, k.key_hash, "
            f"{tcols} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = ?",
            (key_hash,),
        )
        return (_key(r), r[7], _tenant(tuple(r)[8:])) if r else None

    async def list_api_keys(self, tenant_id: str) -> list[ApiKeyRow]:
        rows = await self.conn.fetch(
            "SELECT id, tenant_id, name, prefix, created, last_used, revoked FROM api_keys"
            " WHERE tenant_id = ? ORDER BY created, id",
            (tenant_id,),
        )
        return [_key(r) for r in rows]

    async def revoke_api_key(self, tenant_id: str, key_id: str, when: str) -> bool:
        n = await self.conn.execute(
            "UPDATE api_keys SET revoked = ? WHERE tenant_id = ? AND id = ? AND revoked IS NULL",
            (when, tenant_id, key_id),
        )
        return n > 0

    async def touch_api_key(self, key_id: str, when: str) -> None:
        await self.conn.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (when, key_id))

    # users ---------------------------------------------------------------------------------
    async def get_user(self, tenant_id: str, user_id: str) -> ResourceRow | None:
        r = await self.conn.fetchrow(
            f"SELECT {_USER_COLS} FROM users WHERE tenant_id = ? AND id = ?{self.row_lock}", (tenant_id, user_id)
        )
        return _user(r) if r else None

    async def get_user_by_name(self, tenant_id: str, user_name: str) -> ResourceRow | None:
        r = await self.conn.fetchrow(
            f"SELECT {_USER_COLS} FROM users WHERE tenant_id = ? AND user_name_ci = ?", (tenant_id, fold(user_name))
        )
        return _user(r) if r else None

    # The indexed columns are whatever rows.user_columns/group_columns derive; the SQL is built from them,
    # so adding one there is the only change a new indexed column needs here.
    async def _insert(self, table: str, tenant_id: str, row: ResourceRow, cols: dict[str, Any], extra: dict[str, Any]) -> None:
        values = {"tenant_id": tenant_id, "id": row.id, **cols, **extra, "data": dumps(row.data),
                  "version": row.version, "created": row.created, "last_modified": row.last_modified}
        marks = ", ".join("?" * len(values))
        await self.conn.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks})", tuple(values.values()))

    async def _update(self, table: str, tenant_id: str, row: ResourceRow, cols: dict[str, Any], extra: dict[str, Any]) -> None:
        values = {**cols, **extra, "data": dumps(row.data), "version": row.version, "last_modified": row.last_modified}
        sets = ", ".join(f"{k} = ?" for k in values)
        await self.conn.execute(
            f"UPDATE {table} SET {sets} WHERE tenant_id = ? AND id = ?", (*values.values(), tenant_id, row.id)
        )

    async def insert_user(self, tenant_id: str, row: ResourceRow) -> None:
        extra = {"roles": dumps(row.roles), "provisioned_by": row.provisioned_by}
        await self._insert("users", tenant_id, row, user_columns(row.data), extra)
        await self._write_emails(tenant_id, row.id, row.data)

    async def update_user(self, tenant_id: str, row: ResourceRow) -> None:
        await self._update("users", tenant_id, row, user_columns(row.data), {"roles": dumps(row.roles)})
        await self.conn.execute("DELETE FROM user_emails WHERE tenant_id = ? AND user_id = ?", (tenant_id, row.id))
        await self._write_emails(tenant_id, row.id, row.data)

    async def _write_emails(self, tenant_id: str, user_id: str, data: dict[str, Any]) -> None:
        rows = user_email_rows(data)
        if rows:
            await self.conn.executemany(
                "INSERT INTO user_emails (tenant_id, user_id, value_ci, type, is_primary) VALUES (?, ?, ?, ?, ?)",
                [(tenant_id, user_id, v, t, p) for v, t, p in rows],
            )

    async def set_user_roles(self, tenant_id: str, roles_by_user: dict[str, list[str]]) -> None:
        if roles_by_user:
            await self.conn.executemany(
                "UPDATE users SET roles = ? WHERE tenant_id = ? AND id = ?",
                [(dumps(roles), tenant_id, uid) for uid, roles in roles_by_user.items()],
            )

    async def _delete_resource(self, table: str, tenant_id: str, rid: str) -> bool:
        # The row goes first: on PostgreSQL this waits for any writer that locked it as a new member
        # (existing_ids' KEY SHARE), so the membership delete below also sees that writer's rows. A
        # group's own memberships go with it by ON DELETE CASCADE.
        deleted = await self.conn.execute(f"DELETE FROM {table} WHERE tenant_id = ? AND id = ?", (tenant_id, rid)) > 0
        await self.conn.execute("DELETE FROM group_members WHERE tenant_id = ? AND member_id = ?", (tenant_id, rid))
        return deleted

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        return await self._delete_resource("users", tenant_id, user_id)

    async def query_users(self, tenant_id: str, query: Query) -> Page:
        if query.raw:
            return await self._query("users", _USER_RAW_COLS, _user_raw, tenant_id, query)
        return await self._query("users", _USER_COLS, _user, tenant_id, query)

    # groups --------------------------------------------------------------------------------
    async def get_group(self, tenant_id: str, group_id: str) -> ResourceRow | None:
        r = await self.conn.fetchrow(
            f"SELECT {_GROUP_COLS} FROM groups WHERE tenant_id = ? AND id = ?{self.row_lock}", (tenant_id, group_id)
        )
        return _group(r) if r else None

    async def insert_group(self, tenant_id: str, row: ResourceRow) -> None:
        await self._insert("groups", tenant_id, row, group_columns(row.data), {})

    async def update_group(self, tenant_id: str, row: ResourceRow) -> None:
        await self._update("groups", tenant_id, row, group_columns(row.data), {})

    async def touch_group(self, tenant_id: str, group_id: str, when: str) -> int | None:
        """Bump a group's version without reading it (member-only PATCH); returns the new version."""
        r = await self.conn.fetchrow(
            "UPDATE groups SET version = version + 1, last_modified = ? WHERE tenant_id = ? AND id = ? RETURNING version",
            (when, tenant_id, group_id),
        )
        return int(r[0]) if r else None

    async def delete_group(self, tenant_id: str, group_id: str) -> bool:
        return await self._delete_resource("groups", tenant_id, group_id)

    async def query_groups(self, tenant_id: str, query: Query) -> Page:
        return await self._query("groups", _GROUP_COLS, _group, tenant_id, query)

    async def add_members(self, tenant_id: str, group_id: str, members: list[Member]) -> int:
        if not members:
            return 0
        return await self.conn.executemany(
            f"INSERT INTO group_members {MEMBER_INSERT_COLUMNS} VALUES {MEMBER_VALUES} ON CONFLICT DO NOTHING",
            [member_values(tenant_id, group_id, m.value, m.type) for m in members],
        )

    async def remove_members(self, tenant_id: str, group_id: str, member_ids: list[str]) -> list[str]:
        """Delete these memberships; returns the ids that were members (so listeners know the exact delta)."""
        removed: list[str] = []
        for chunk, marks in in_lists(member_ids):
            rows = await self.conn.fetch(
                f"DELETE FROM group_members WHERE tenant_id = ? AND group_id = ? AND member_id IN ({marks})"
                " RETURNING member_id",
                (tenant_id, group_id, *chunk),
            )
            removed.extend(r[0] for r in rows)
        return removed

    async def clear_members(self, tenant_id: str, group_id: str) -> list[str]:
        rows = await self.conn.fetch(
            "DELETE FROM group_members WHERE tenant_id = ? AND group_id = ? RETURNING member_id", (tenant_id, group_id)
        )
        return [r[0] for r in rows]

    async def list_members(self, tenant_id: str, group_id: str) -> list[Member]:
        rows = await self.scan_conn.fetch(
            "SELECT m.member_id, m.member_type, COALESCE(u.display_name, u.user_name, g.display_name)"
            " FROM group_members m"
            " LEFT JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.member_id"
            " LEFT JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.member_id"
            " WHERE m.tenant_id = ? AND m.group_id = ? ORDER BY m.member_id",
            (tenant_id, group_id),
        )
        return [Member(r[0], r[1], r[2]) for r in rows]

    async def groups_of_users(
        self, tenant_id: str, user_ids: list[str], *, seq_range: tuple[int, int] | None = None
    ) -> dict[str, list[Member]]:
        out: dict[str, list[Member]] = {u: [] for u in user_ids}
        if seq_range is not None and seq_range[1] - seq_range[0] < _RANGE_SPREAD * len(user_ids):
            # The users' seqs are close together (a page in insertion order): one range read of
            # group_members_member_seq finds their memberships; the few of other users in the range are dropped.
            rows = await self.conn.fetch(
                "SELECT m.member_id, g.id, g.display_name FROM group_members m"
                " JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id"
                " WHERE m.tenant_id = ? AND m.member_seq BETWEEN ? AND ? ORDER BY g.display_name_ci, g.id",
                (tenant_id, seq_range[0], seq_range[1]),
            )
            for r in rows:
                found = out.get(r[0])
                if found is not None:
                    found.append(Member(r[1], "direct", r[2]))
            return out
        for chunk, marks in in_lists(user_ids):
            rows = await self.conn.fetch(
                "SELECT m.member_id, g.id, g.display_name FROM group_members m"
                " JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id"
                f" WHERE m.tenant_id = ? AND m.member_id IN ({marks}) ORDER BY g.display_name_ci, g.id",
                (tenant_id, *chunk),
            )
            for r in rows:
                out[r[0]].append(Member(r[1], "direct", r[2]))
        return out

    async def existing_ids(self, tenant_id: str, ids: list[str]) -> dict[str, str]:
        """Which of ``ids`` exist in the tenant, mapped to ``User`` or ``Group``."""
        found: dict[str, str] = {}
        for chunk, marks in in_lists(ids):
            for table, kind in (("users", "User"), ("groups", "Group")):
                # in a PostgreSQL write, KEY SHARE keeps a concurrent delete from orphaning the membership
                rows = await self.conn.fetch(
                    f"SELECT id FROM {table} WHERE tenant_id = ? AND id IN ({marks}){self.share_lock}", (tenant_id, *chunk)
                )
                found.update({r[0]: kind for r in rows})
        return found

    # list queries --------------------------------------------------------------------------
    async def _query(self, table: str, cols: str, build: Any, tenant_id: str, q: Query) -> Page:
        conn = self.conn if q.point else self.scan_conn
        where = "r.tenant_id = ?"
        params: list[Any] = [tenant_id]
        if q.narrow:
            # The candidates drive the query: "+" keeps the planner from walking the tenant's index instead.
            # They are read once (the count and the page would each evaluate the index again); a few
            # are bound as values, and the rest of the query is then a handful of rowid lookups.
            candidates = [r[0] for r in await self.scan_conn.fetch(q.narrow, q.narrow_params)]
            if not candidates:
                return Page(0 if q.count_total else -1, [])
            if len(candidates) <= _BOUND_CANDIDATES:
                conn = self.conn
                where = f"r.seq IN ({', '.join('?' * len(candidates))}) AND +r.tenant_id = ?"
                params = [*candidates, tenant_id]
            else:
                where = f"r.seq IN ({q.narrow}) AND +r.tenant_id = ?"
                params = [*q.narrow_params, tenant_id]
        if q.where:
            where += f" AND ({q.where})"
            params.extend(q.params)
        total = -1
        if q.count_total:
            r = await conn.fetchrow(f"SELECT count(*) FROM {table} r WHERE {where}", params)
            total = int(r[0]) if r else 0
        if q.limit == 0:
            return Page(total, [])
        page_where, page_params = where, list(params)
        if q.after_seq is not None:
            page_where += " AND r.seq > ?"
            page_params.append(q.after_seq)
        direction = "DESC" if q.descending else "ASC"
        # RFC 7644 §3.4.2.3: resources without a value sort last ascending and first descending
        nulls = "NULLS FIRST" if q.descending else "NULLS LAST"
        order = f"{q.order_by} {direction} {nulls}, r.seq {direction}" if q.order_by else f"r.seq {direction}"
        sql = f"SELECT {', '.join('r.' + c.strip() for c in cols.split(','))} FROM {table} r WHERE {page_where} ORDER BY {order}"
        if q.limit is not None:
            sql += " LIMIT ?"
            page_params.append(q.limit)
            if q.offset:
                sql += " OFFSET ?"
                page_params.append(q.offset)
        elif q.offset:
            sql += " LIMIT ? OFFSET ?"
            page_params.extend((2**62, q.offset))
        # A page in insertion order from a position (a cursor, or the first page) reads `limit` index
        # entries whatever the tenant's size: a point read, fit for the cheap path.
        bounded = not q.where and q.order_by is None and not q.offset and q.limit is not None
        rows = await (self.conn if bounded else conn).fetch(sql, page_params)
        return Page(total, [build(x) for x in rows])

    # roles ---------------------------------------------------------------------------------
    async def get_user_roles(self, tenant_id: str, user_ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for chunk, marks in in_lists(user_ids):
            rows = await self.scan_conn.fetch(
                f"SELECT id, roles FROM users WHERE tenant_id = ? AND id IN ({marks})", (tenant_id, *chunk)
            )
            out.update({r[0]: loads(r[1]) for r in rows})
        return out

    async def member_group_roles(
        self,
        tenant_id: str,
        mapping: list[tuple[str, str]],
        *,
        user_ids: list[str] | None = None,
        exclude_group: str | None = None,
    ) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        if not mapping:
            return out
        # The mapping travels as a VALUES table (column1 = folded name, column2 = raw key for ids,
        # column3 = role), so one statement resolves every user's roles in the database.
        values = ", ".join("(?, ?, ?)" for _ in mapping)
        mparams: list[Any] = [x for key, role in mapping for x in (fold(key), key, role)]
        base = (
            "SELECT m.member_id, mp.column3 FROM group_members m"
            " JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id"
            f" JOIN (VALUES {values}) mp ON (mp.column1 = g.display_name_ci OR mp.column2 = g.id)"
            " WHERE m.tenant_id = ? AND m.member_type = 'User'"
        )
        params: list[Any] = [*mparams, tenant_id]
        if exclude_group is not None:
            base += " AND m.group_id <> ?"
            params.append(exclude_group)
        chunks: list[list[str] | None] = [None]
        if user_ids is not None:
            chunks = [user_ids[i : i + 500] for i in range(0, len(user_ids), 500)]
        for chunk in chunks:
            sql, p = base, list(params)
            if chunk is not None:
                sql += f" AND m.member_id IN ({', '.join('?' * len(chunk))})"
                p.extend(chunk)
            for r in await self.scan_conn.fetch(sql, p):
                out.setdefault(r[0], set()).add(r[1])
        return out

    async def role_derived_users(self, tenant_id: str, *, roles_not: list[str]) -> dict[str, list[str]]:
        rows = await self.scan_conn.fetch(
            "SELECT u.id, u.roles FROM users u WHERE u.tenant_id = ? AND u.roles <> ?"
            " AND (u.provisioned_by = 'scim' OR EXISTS (SELECT 1 FROM group_members m"
            " WHERE m.tenant_id = u.tenant_id AND m.member_id = u.id))",
            (tenant_id, dumps(roles_not)),
        )
        return {r[0]: loads(r[1]) for r in rows}

    # activity ------------------------------------------------------------------------------
    async def insert_event(self, tenant_id: str, type: str, created: str, data: dict[str, Any]) -> None:
        raw = orjson.dumps(data)
        await self.conn.execute(
            "INSERT INTO activity (tenant_id, type, created, data, size) VALUES (?, ?, ?, ?, ?)",
            (tenant_id, type, created, raw.decode(), len(raw)),
        )

    async def list_events(
        self, tenant_id: str, *, type: str | None = None, limit: int = 50, before_seq: int | None = None
    ) -> list[EventRow]:
        sql, params = newest_first(
            "SELECT seq, tenant_id, type, created, data FROM activity WHERE tenant_id = ?",
            (tenant_id,), where=(("type", type),), seq="seq", before=before_seq, limit=limit,
        )
        return [EventRow(r[0], r[1], r[2], r[3], loads(r[4])) for r in await self.conn.fetch(sql, params)]

    async def prune_events(self, tenant_id: str, *, older_than: str | None, keep: int | None) -> int:
        removed = 0
        if older_than:
            removed += await self.conn.execute(
                "DELETE FROM activity WHERE tenant_id = ? AND created < ?", (tenant_id, older_than)
            )
        if keep is not None:
            r = await self.conn.fetchrow(
                "SELECT seq FROM activity WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?", (tenant_id, keep)
            )
            if r:
                removed += await self.conn.execute(
                    "DELETE FROM activity WHERE tenant_id = ? AND seq <= ?", (tenant_id, r[0])
                )
        return removed
