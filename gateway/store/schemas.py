"""SQL for per-tenant custom schema extensions (the ``tenant_schemas`` table of migration 0007).

A mixin of :class:`gateway.store.sql.SqlOps`: it uses the same ``conn`` and ``?`` placeholders.
"""

from __future__ import annotations

from typing import Any, Sequence

from gateway.store.base import SchemaRow
from gateway.store.conn import Conn, dumps, loads
from gateway.store.rows import fold

_COLS = "urn, resource_type, required, document, created, last_modified"


def _row(r: Sequence[Any]) -> SchemaRow:
    return SchemaRow(
        urn=r[0],
        resource_type=r[1],
        required=bool(r[2]),
        document=loads(r[3]),
        created=r[4],
        last_modified=r[5],
    )


class SchemaOps:
    """Reads and writes of ``tenant_schemas``; every statement is keyed by tenant id."""

    conn: Conn
    row_lock: str

    async def list_tenant_schemas(self, tenant_id: str) -> list[SchemaRow]:
        rows = await self.conn.fetch(
            f"SELECT {_COLS} FROM tenant_schemas WHERE tenant_id = ? ORDER BY created, urn_ci", (tenant_id,)
        )
        return [_row(r) for r in rows]

    async def get_tenant_schema(self, tenant_id: str, urn: str) -> SchemaRow | None:
        r = await self.conn.fetchrow(
            f"SELECT {_COLS} FROM tenant_schemas WHERE tenant_id = ? AND urn_ci = ?", (tenant_id, fold(urn))
        )
        return _row(r) if r else None

    async def put_tenant_schema(self, tenant_id: str, row: SchemaRow) -> None:
        """Insert or replace the declaration of ``row.urn`` (URNs compare case-insensitively)."""
        doc = dumps(row.document)
        n = await self.conn.execute(
            "UPDATE tenant_schemas SET urn = ?, resource_type = ?, required = ?, document = ?, last_modified = ?"
            " WHERE tenant_id = ? AND urn_ci = ?",
            (row.urn, row.resource_type, row.required, doc, row.last_modified, tenant_id, fold(row.urn)),
        )
        if n == 0:
            await self.conn.execute(
                "INSERT INTO tenant_schemas (tenant_id, urn, urn_ci, resource_type, required, document, created,"
                " last_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant_id, row.urn, fold(row.urn), row.resource_type, row.required, doc, row.created,
                 row.last_modified),
            )

    async def delete_tenant_schema(self, tenant_id: str, urn: str) -> bool:
        n = await self.conn.execute(
            "DELETE FROM tenant_schemas WHERE tenant_id = ? AND urn_ci = ?", (tenant_id, fold(urn))
        )
        return n > 0

    async def lock_tenant(self, tenant_id: str) -> None:
        """Serialise this transaction's writes with other writers of the tenant that lock it too (no-op on SQLite,
        whose writers are serialised anyway): taken before a check that an index cannot enforce."""
        await self.conn.fetchrow(f"SELECT id FROM tenants WHERE id = ?{self.row_lock}", (tenant_id,))

    async def bump_schema_version(self, tenant_id: str) -> int:
        """Mark the tenant's schemas changed; returns the new version (0 when there is no such tenant)."""
        await self.conn.execute(
            "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = ?", (tenant_id,)
        )
        r = await self.conn.fetchrow("SELECT schema_version FROM tenants WHERE id = ?", (tenant_id,))
        return int(r[0]) if r else 0
