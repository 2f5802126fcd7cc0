"""Store SQL for operations: schema versions (readiness) and deleting a tenant with all its data.

A tenant's data is every row of every table with a ``tenant_id`` column (DESIGN §6: every tenant-owned
row carries it), found in the catalog at delete time, so a table added by a later migration is
deleted with its tenant without a change here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.store.conn import Conn

_SQLITE_TABLES = (
    "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c"
    " WHERE m.type = 'table' AND c.name = 'tenant_id' ORDER BY m.name"
)
_SQLITE_REFS = 'SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)'
_PG_TABLES = (
    "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " WHERE a.attname = 'tenant_id' AND NOT a.attisdropped AND c.relkind IN ('r', 'p')"
    " AND c.relnamespace = current_schema()::regnamespace ORDER BY c.relname"
)
_PG_REFS = (
    "SELECT DISTINCT c.relname, f.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
    " JOIN pg_class f ON f.oid = k.confrelid WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace"
)


class OpsSql:
    """Mixed into :class:`gateway.store.sql.SqlOps`."""

    conn: Conn
    scan_conn: Conn

    async def schema_versions(self) -> set[int]:
        return {int(r[0]) for r in await self.conn.fetch("SELECT version FROM schema_migrations")}

    async def count_activity(self) -> int:
        row = await self.scan_conn.fetchrow("SELECT COUNT(*) FROM activity")  # a scan: never on a point-read path
        return int(row[0]) if row else 0

    async def delete_tenant(self, tenant_id: str) -> dict[str, int] | None:
        if await self.conn.fetchrow("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)) is None:
            return None
        tables, refs = await self._tenant_tables()
        removed: dict[str, int] = {}
        for table in _children_first(tables, refs):
            column = "id" if table == "tenants" else "tenant_id"
            removed[table] = await self.conn.execute(f'DELETE FROM "{table}" WHERE {column} = ?', (tenant_id,))
        return removed

    async def _tenant_tables(self) -> tuple[list[str], dict[str, set[str]]]:
        refs: dict[str, set[str]] = {}
        if getattr(self.conn, "dialect", "sqlite") == "postgres":
            tables = [r[0] for r in await self.conn.fetch(_PG_TABLES)]
            for child, parent in await self.conn.fetch(_PG_REFS):
                refs.setdefault(child, set()).add(parent)
        else:
            tables = [r[0] for r in await self.conn.fetch(_SQLITE_TABLES)]
            for t in [*tables, "tenants"]:
                refs[t] = {r[0] for r in await self.conn.fetch(_SQLITE_REFS, (t,))}
        return sorted({*tables, "tenants"}), refs


def _children_first(tables: list[str], refs: dict[str, set[str]]) -> list[str]:
    """``tables`` ordered so that a table comes before every table it references (foreign keys)."""
    remaining = set(tables)
    out: list[str] = []
    while remaining:
        referenced = {p for t in remaining for p in refs.get(t, ()) if p != t and p in remaining}
        ready = sorted(remaining - referenced) or sorted(remaining)  # a cycle: cascades settle the rest
        out.extend(ready)
        remaining.difference_update(ready)
    return out
