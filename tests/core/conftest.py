"""Fixtures for the filter tests: a SQLite database with every migration (and optionally PostgreSQL with 0001).

Rows are written with :mod:`gateway.store.rows`, and the client-visible resource (what
:func:`gateway.core.filter.matches` sees) is rendered from the same inputs, so SQL results can be
compared with the reference evaluator.

PostgreSQL runs only when ``SCIM_GATEWAY_TEST_POSTGRES`` holds a DSN; each test session creates a
fresh schema, applies the migration in it and drops it at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import uuid
from importlib import resources
from typing import Any, Iterator

import pytest

from gateway.core.filter import parse_filter
from gateway.core.schema import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, ResourceType, group_type, user_type
from gateway.core.sqlfilter import compile_filter, register_sqlite_functions
from gateway.core.substring import compile_narrowing
from gateway.store import rows
from gateway.store.migrations import migration_scripts

TENANT = "t1"
OTHER_TENANT = "t2"


def migration(dialect: str) -> str:
    return resources.files("gateway.store").joinpath("migrations", dialect, "0001_initial.sql").read_text()


def render_user(data: dict[str, Any], uid: str, created: str, modified: str, version: int,
                groups: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The resource as the HTTP layer returns it (see the assumptions in gateway.core.sqlfilter)."""
    res = {k: v for k, v in data.items()}
    schemas = [USER_SCHEMA] + ([ENTERPRISE_USER_SCHEMA] if isinstance(data.get(ENTERPRISE_USER_SCHEMA), dict) else [])
    res["schemas"] = schemas
    res["id"] = uid
    res["active"] = data.get("active") is not False
    res["meta"] = {"resourceType": "User", "created": created, "lastModified": modified,
                   "version": f'W/"{version}"', "location": f"https://example.com/v2/Users/{uid}"}
    if groups:
        res["groups"] = groups
    return res


def render_group(data: dict[str, Any], gid: str, created: str, modified: str, version: int,
                 members: list[dict[str, Any]]) -> dict[str, Any]:
    res = dict(data)
    res["schemas"] = [GROUP_SCHEMA]
    res["id"] = gid
    res["meta"] = {"resourceType": "Group", "created": created, "lastModified": modified,
                   "version": f'W/"{version}"', "location": f"https://example.com/v2/Groups/{gid}"}
    if members:
        res["members"] = members
    return res


class Backend:
    """One database; ``query`` returns the ids a filter selects in TENANT."""

    dialect: str
    render_user = staticmethod(render_user)
    render_group = staticmethod(render_group)

    def insert_user(self, uid: str, data: dict[str, Any], created: str, modified: str, version: int,
                    tenant: str = TENANT) -> None:
        raise NotImplementedError

    def insert_group(self, gid: str, data: dict[str, Any], created: str, modified: str, version: int,
                     members: list[tuple[str, str]], tenant: str = TENANT) -> None:
        raise NotImplementedError

    def select(self, table: str, sql: str, params: list[Any]) -> set[str]:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def query(self, filter_text: str, rtype: ResourceType | None = None) -> set[str]:
        rtype = rtype or user_type()
        sql, params = compile_filter(parse_filter(filter_text), rtype, self.dialect)  # type: ignore[arg-type]
        return self.select("users" if rtype.name == "User" else "groups", sql, params)


class SqliteBackend(Backend):
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)
        register_sqlite_functions(self.conn)
        # every migration: the substring index of 0009 is kept by triggers on these very tables
        for _, script in migration_scripts("sqlite"):
            self.conn.executescript(script)
        for t in (TENANT, OTHER_TENANT):
            self.conn.execute("INSERT INTO tenants (id, name, created) VALUES (?, ?, ?)", (t, t, "2020"))
        self.conn.commit()

    def insert_user(self, uid: str, data: dict[str, Any], created: str, modified: str, version: int,
                    tenant: str = TENANT) -> None:
        cols = rows.user_columns(data)
        stored = {k: v for k, v in data.items() if k not in ("id", "meta", "groups", "password")}
        self.conn.execute(
            "INSERT INTO users (tenant_id, id, user_name, user_name_ci, external_id, display_name_ci, active,"
            " email_ci, data, version, created, last_modified) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (tenant, uid, cols["user_name"], cols["user_name_ci"], cols["external_id"], cols["display_name_ci"],
             int(cols["active"]), cols["email_ci"], json.dumps(stored), version, created, modified),
        )
        for value_ci, typ, primary in rows.user_email_rows(data):
            self.conn.execute(
                "INSERT INTO user_emails (tenant_id, user_id, value_ci, type, is_primary) VALUES (?,?,?,?,?)",
                (tenant, uid, value_ci, typ, int(primary)),
            )

    def insert_group(self, gid: str, data: dict[str, Any], created: str, modified: str, version: int,
                     members: list[tuple[str, str]], tenant: str = TENANT) -> None:
        cols = rows.group_columns(data)
        stored = {k: v for k, v in data.items() if k not in ("id", "meta", "members")}
        self.conn.execute(
            "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, external_id, data, version, created,"
            " last_modified) VALUES (?,?,?,?,?,?,?,?,?)",
            (tenant, gid, cols["display_name"], cols["display_name_ci"], cols["external_id"], json.dumps(stored),
             version, created, modified),
        )
        for mid, mtype in members:
            self.conn.execute(
                f"INSERT INTO group_members {rows.MEMBER_INSERT_COLUMNS} VALUES {rows.MEMBER_VALUES}",
                rows.member_values(tenant, gid, mid, mtype),
            )

    def query(self, filter_text: str, rtype: ResourceType | None = None) -> set[str]:
        """The ids the filter selects, checked to be the same with and without the substring index."""
        rtype = rtype or user_type()
        node = parse_filter(filter_text)
        sql, params = compile_filter(node, rtype, "sqlite")
        table = "users" if rtype.name == "User" else "groups"
        exact = self.select(table, sql, params)
        narrowing = compile_narrowing(node, rtype, "sqlite")
        if narrowing is not None:
            cur = self.conn.execute(
                f"SELECT r.id FROM {table} r WHERE r.seq IN ({narrowing[0]}) AND +r.tenant_id = ? AND ({sql})",
                [*narrowing[1], TENANT, *params],
            )
            narrowed = {row[0] for row in cur.fetchall()}
            assert narrowed == exact, f"{filter_text!r}: narrowed by the index {sorted(narrowed)} != {sorted(exact)}"
        return exact

    def select(self, table: str, sql: str, params: list[Any]) -> set[str]:
        cur = self.conn.execute(f"SELECT r.id FROM {table} r WHERE r.tenant_id = ? AND ({sql})", [TENANT, *params])
        return {row[0] for row in cur.fetchall()}

    def clear(self) -> None:
        for t in ("group_members", "groups", "user_emails", "users"):
            self.conn.execute(f"DELETE FROM {t}")
        for t in ("user_name_search", "user_email_search", "user_display_search", "user_external_search",
                  "group_display_search", "group_external_search"):
            assert self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0, t  # kept in step


def renumber(sql: str) -> str:
    """``?`` -> ``$1, $2, ...`` as the PostgreSQL store does."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, dsn: str) -> None:
        import asyncpg

        self.loop = asyncio.new_event_loop()
        self.schema = f"scim_test_{uuid.uuid4().hex[:12]}"
        self.conn = self.run(asyncpg.connect(dsn))
        self.run(self.conn.execute(f"CREATE SCHEMA {self.schema}; SET search_path TO {self.schema}"))
        self.run(self.conn.execute(migration("postgres")))
        for t in (TENANT, OTHER_TENANT):
            self.run(self.conn.execute("INSERT INTO tenants (id, name, created) VALUES ($1, $2, $3)", t, t, "2020"))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def insert_user(self, uid: str, data: dict[str, Any], created: str, modified: str, version: int,
                    tenant: str = TENANT) -> None:
        cols = rows.user_columns(data)
        stored = {k: v for k, v in data.items() if k not in ("id", "meta", "groups", "password")}
        self.run(self.conn.execute(
            "INSERT INTO users (tenant_id, id, user_name, user_name_ci, external_id, display_name_ci, active,"
            " email_ci, data, version, created, last_modified) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb,$10,$11,$12)",
            tenant, uid, cols["user_name"], cols["user_name_ci"], cols["external_id"], cols["display_name_ci"],
            cols["active"], cols["email_ci"], json.dumps(stored), version, created, modified,
        ))
        for value_ci, typ, primary in rows.user_email_rows(data):
            self.run(self.conn.execute(
                "INSERT INTO user_emails (tenant_id, user_id, value_ci, type, is_primary) VALUES ($1,$2,$3,$4,$5)",
                tenant, uid, value_ci, typ, primary,
            ))

    def insert_group(self, gid: str, data: dict[str, Any], created: str, modified: str, version: int,
                     members: list[tuple[str, str]], tenant: str = TENANT) -> None:
        cols = rows.group_columns(data)
        stored = {k: v for k, v in data.items() if k not in ("id", "meta", "members")}
        self.run(self.conn.execute(
            "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, external_id, data, version, created,"
            " last_modified) VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7,$8,$9)",
            tenant, gid, cols["display_name"], cols["display_name_ci"], cols["external_id"], json.dumps(stored),
            version, created, modified,
        ))
        for mid, mtype in members:
            self.run(self.conn.execute(
                "INSERT INTO group_members (tenant_id, group_id, member_id, member_type) VALUES ($1,$2,$3,$4)",
                tenant, gid, mid, mtype,
            ))

    def select(self, table: str, sql: str, params: list[Any]) -> set[str]:
        text = renumber(f"SELECT r.id FROM {table} r WHERE r.tenant_id = ? AND ({sql})")
        return {r["id"] for r in self.run(self.conn.fetch(text, TENANT, *params))}

    def clear(self) -> None:
        self.run(self.conn.execute("DELETE FROM group_members; DELETE FROM groups; DELETE FROM user_emails;"
                                   " DELETE FROM users"))

    def close(self) -> None:
        self.run(self.conn.execute(f"DROP SCHEMA {self.schema} CASCADE"))
        self.run(self.conn.close())
        self.loop.close()


PG_DSN = os.environ.get("SCIM_GATEWAY_TEST_POSTGRES")


@pytest.fixture(scope="session")
def pg_backend() -> Iterator[PostgresBackend]:
    if not PG_DSN:
        pytest.skip("SCIM_GATEWAY_TEST_POSTGRES is not set")
    backend = PostgresBackend(PG_DSN)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Backend]:
    """An empty database per test: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        b = SqliteBackend(str(tmp_path / "scim.db"))
        yield b
        b.conn.close()
    else:
        pg: PostgresBackend = request.getfixturevalue("pg_backend")
        pg.clear()
        yield pg
        pg.clear()


@pytest.fixture(scope="module")
def sqlite_module_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteBackend]:
    """A SQLite backend shared by a module (property tests clear it per example)."""
    b = SqliteBackend(str(tmp_path_factory.mktemp("scim") / "scim.db"))
    yield b
    b.conn.close()


__all__ = ["Backend", "render_user", "render_group", "TENANT", "OTHER_TENANT", "group_type", "user_type"]
