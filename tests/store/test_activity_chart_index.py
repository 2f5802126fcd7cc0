"""Migration 0005: the portal's hourly activity chart reads a tenant's time window through
``activity_tenant_created``, and the migration reaches a database that is already past it.

The plan is taken of the very statement ``hourly_event_counts`` sends (recorded from a connection
stand-in), so a rewrite of the chart's query is checked against the index as well.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Sequence

import pytest

from gateway.store.postgres import PostgresStore
from gateway.store.sql import SqlOps
from gateway.store.sqlite import SqliteStore

POSTGRES_DSN = os.environ.get("SCIM_GATEWAY_TEST_POSTGRES")
INDEX = "activity_tenant_created"


class _Recorder:
    """A connection that records the statements it is given and returns no rows."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Sequence[Any]]] = []

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.statements.append((sql, params))
        return []

    async def fetchrow(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        self.statements.append((sql, params))
        return None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        raise AssertionError("the chart only reads")

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        raise AssertionError("the chart only reads")


async def _chart_query() -> tuple[str, Sequence[Any]]:
    rec = _Recorder()
    await SqlOps(rec).hourly_event_counts("t1", "scim_error", "2026-01-01T00:00:00.000000Z",
                                          "2026-01-02T00:00:00.000000Z")
    assert len(rec.statements) == 1
    return rec.statements[0]


async def _sqlite_plan(path: Path) -> str:
    sql, params = await _chart_query()
    conn = sqlite3.connect(str(path))
    try:
        return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    finally:
        conn.close()


async def test_hourly_chart_query_searches_tenant_and_time_through_the_index(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "chart.db"))
    await store.open()
    await store.close()
    plan = await _sqlite_plan(tmp_path / "chart.db")
    # tenant equality and the created range both bound the search: no walk over the tenant's other rows
    assert f"USING INDEX {INDEX} (tenant_id=? AND created>? AND created<?)" in plan, plan


async def test_migration_0005_reaches_a_database_already_past_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(str(path))
    await store.open()
    await store.close()
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] >= 9
        conn.execute("DELETE FROM schema_migrations WHERE version = 5")
        conn.execute(f"DROP INDEX {INDEX}")
        conn.commit()
    finally:
        conn.close()
    assert INDEX not in await _sqlite_plan(path)

    store = SqliteStore(str(path))
    await store.open()
    try:
        assert store.applied_migrations == [5]
    finally:
        await store.close()
    assert f"USING INDEX {INDEX} (tenant_id=? AND created>? AND created<?)" in await _sqlite_plan(path)
    store = SqliteStore(str(path))
    await store.open()  # and only once
    try:
        assert store.applied_migrations == []
    finally:
        await store.close()


@pytest.mark.skipif(not POSTGRES_DSN, reason="needs PostgreSQL: set SCIM_GATEWAY_TEST_POSTGRES")
async def test_migration_0005_reaches_a_postgres_schema_already_past_it() -> None:
    import asyncpg

    assert POSTGRES_DSN
    schema = f"test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        store = PostgresStore(POSTGRES_DSN, schema=schema)
        await store.open()
        await store.close()
        assert await conn.fetchval(f'SELECT max(version) FROM "{schema}".schema_migrations') >= 9
        await conn.execute(f'DELETE FROM "{schema}".schema_migrations WHERE version = 5')
        await conn.execute(f'DROP INDEX "{schema}".{INDEX}')

        store = PostgresStore(POSTGRES_DSN, schema=schema)
        await store.open()
        await store.close()
        assert store.applied_migrations == [5]
        found = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
                                    schema, INDEX)
        assert found is not None and found.endswith("(tenant_id, created)"), found
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
