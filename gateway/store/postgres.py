"""PostgreSQL backend (asyncpg): a connection pool, one transaction per ``write()``, locked migrations.

Several gateway processes may share one database. SQLite serialises writers with one lock; here
each ``write()`` is a READ COMMITTED transaction on its own pooled connection, and the single-row
reads a write makes (``get_user``/``get_group``) lock the row, so a resource's read-modify-write
never interleaves with another process's. Membership rows are inserted with ``ON CONFLICT DO
NOTHING`` and version bumps are ``UPDATE ... SET version = version + 1``, which PostgreSQL
serialises on the row lock and re-evaluates against the committed row.

A unique violation aborts the PostgreSQL transaction: after :class:`StoreConflict` the ``Tx`` must
not be used again (the caller leaves the ``write()`` block, which rolls back).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Sequence
from urllib.parse import urlsplit

import asyncpg
import structlog

from gateway.store.base import Reader, StoreConflict, StoreUnavailable, Tx
from gateway.store.migrations import migration_scripts
from gateway.store.conn import dumps
from gateway.store.sql import SqlOps

# Taken by single-row reads inside write(); NO KEY UPDATE (what a non-key UPDATE takes anyway) does
# not conflict with the KEY SHARE locks foreign-key checks take, so member inserts don't block on it.
_ROW_LOCK = " FOR NO KEY UPDATE"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_STATUS_COUNT = re.compile(r"(\d+)\s*$")
_INSERT_VALUES = re.compile(
    r"^\s*(INSERT\s+INTO\s+[^?']+?)\s+VALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)([^?']*)$", re.IGNORECASE | re.DOTALL
)

# Constraint name fragment -> what the client is told; names are PostgreSQL's defaults for the
# UNIQUE constraints of the 0001 migration (e.g. users_tenant_id_user_name_ci_key).
_CONFLICTS = (
    ("user_name_ci", "userName must be unique"),
    ("key_hash", "API key hash must be unique"),
    ("users_tenant_id_id", "User id must be unique"),
    ("groups_tenant_id_id", "Group id must be unique"),
    ("tenants_pkey", "tenant id must be unique"),
    ("api_keys_pkey", "API key id must be unique"),
)


# --- ``?`` -> ``$n`` ------------------------------------------------------------------------------
# sql.py and every store mixin write ``?``; PostgreSQL wants ``$1, $2, ...``. One scan per statement
# (a few microseconds, nothing cached) numbers the ``?`` outside quoted literals, quoted identifiers,
# comments and dollar-quoted strings. Our SQL pastes no value (values are always bound), so a ``?``
# can only be a placeholder; never write PostgreSQL's jsonb ``?`` operators (use jsonb_exists()).
_TOKEN = re.compile(
    r"""[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|"[^"]*"|--[^\n]*|/\*.*?\*/|(?<![\w$])\$(\w*)\$.*?\$\1\$|\?""",
    re.DOTALL,
)


_QUOTING = re.compile(r"['\"$]|--|/\*")


def renumber(sql: str) -> str:
    """Rewrite ``?`` placeholders to ``$1, $2, ...``, leaving literals, identifiers and comments alone."""
    if not _QUOTING.search(sql):  # the usual statement: nothing quoted, every ? is a placeholder
        parts = sql.split("?")
        return "".join(f"{p}${i}" for i, p in enumerate(parts[:-1], start=1)) + parts[-1]
    n = 0

    def number(m: re.Match[str]) -> str:
        nonlocal n
        if m.group(0) != "?":
            return m.group(0)
        n += 1
        return f"${n}"

    return _TOKEN.sub(number, sql)


def _rowcount(status: str | None) -> int:
    # asyncpg returns the command tag: "INSERT 0 3", "UPDATE 2", "DELETE 0", "SELECT 1".
    m = _STATUS_COUNT.search(status or "")
    return int(m.group(1)) if m else 0


def _conflict(exc: asyncpg.UniqueViolationError) -> StoreConflict:
    name = exc.constraint_name or ""
    for fragment, message in _CONFLICTS:
        if fragment in name:
            return StoreConflict(message)
    return StoreConflict(f"unique constraint {name or 'violated'}")


# --- connection --------------------------------------------------------------------------------
class _Conn:
    """sql.py's ``Conn`` over one asyncpg connection."""

    dialect = "postgres"

    def __init__(self, conn: asyncpg.Connection, unnest: dict[str, str | None]) -> None:
        self.conn = conn
        # the store's bulk-insert forms, keyed by statement text from sql.py (a small, fixed set); None = none
        self.unnest = unnest

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return list(await self.conn.fetch(renumber(sql), *params))
        except asyncpg.UniqueViolationError as exc:  # INSERT/UPDATE ... RETURNING
            raise _conflict(exc) from None

    async def fetchrow(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        try:
            return await self.conn.fetchrow(renumber(sql), *params)
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc) from None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            return _rowcount(await self.conn.execute(renumber(sql), *params))
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc) from None

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` once per row and return the total affected rows (asyncpg's executemany can't).

        A multi-row ``INSERT ... VALUES (?, ...)`` becomes one ``INSERT ... SELECT * FROM unnest(...)``
        (one round trip however many rows; ``ON CONFLICT DO NOTHING`` skips in-batch duplicates too);
        anything else runs row by row on the connection's cached prepared statement.
        """
        if not rows:
            return 0
        try:
            if len(rows) > 1:
                bulk = await self._unnest_insert(sql)
                if bulk is not None:
                    columns = [list(col) for col in zip(*rows, strict=True)]
                    return _rowcount(await self.conn.execute(bulk, *columns))
            text = renumber(sql)
            total = 0
            for row in rows:
                total += _rowcount(await self.conn.execute(text, *row))
            return total
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc) from None

    async def _unnest_insert(self, sql: str) -> str | None:
        cached = self.unnest.get(sql)
        if cached is not None or sql in self.unnest:
            return cached
        m = _INSERT_VALUES.match(sql)
        bulk: str | None = None
        if m:
            # The parameter types PostgreSQL infers for the single-row statement type the arrays.
            stmt = await self.conn.prepare(renumber(sql))
            arrays = ", ".join(
                f'${n}::"{t.schema}"."{t.name}"[]' for n, t in enumerate(stmt.get_parameters(), start=1)
            )
            bulk = f"{m.group(1)} SELECT * FROM unnest({arrays}){m.group(2)}"
        self.unnest[sql] = bulk
        return bulk


def _encode_json(value: Any) -> str:
    # sql.py hands JSON over as text already; accept Python values too, for callers outside it.
    return value if isinstance(value, str) else dumps(value)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON travels as text both ways, so sql.py's dumps()/loads() work exactly as on SQLite.
    for name in ("jsonb", "json"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=_encode_json, decoder=str, format="text")


def _lock_key(scope: str) -> int:
    """A stable signed 64-bit advisory lock key for this schema's migrations."""
    return int.from_bytes(hashlib.sha256(f"scim-gateway:migrate:{scope}".encode()).digest()[:8], "big", signed=True)


class PostgresStore:
    """The Store on PostgreSQL; ``schema`` isolates a gateway (or a test) inside one database."""

    dialect = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        drop_schema_on_close: bool = False,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 0.0,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema name {schema!r} must be a plain SQL identifier")
        if drop_schema_on_close and schema is None:
            raise ValueError("drop_schema_on_close needs a schema")
        self.dsn = dsn
        self.schema = schema
        self.drop_schema_on_close = drop_schema_on_close
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._unnest: dict[str, str | None] = {}
        self.connect_timeout = connect_timeout  # total time open() keeps retrying an unreachable server
        self.applied_migrations: list[int] = []
        self.on_timing: Callable[[str, float], None] | None = None
        self.emit_events = True  # the gateway's events switch (SCIM_GATEWAY_EVENTS_ENABLED)

    def _server_settings(self) -> dict[str, str]:
        # Every pooled connection resolves unqualified table names in our schema only.
        return {"search_path": f'"{self.schema}"'} if self.schema else {}

    async def _connect_with_retry(self) -> asyncpg.Connection:
        """Connect, retrying with back-off while the server is unreachable, for ``connect_timeout`` seconds."""
        deadline = time.monotonic() + self.connect_timeout
        delay = 0.25
        attempt = 0
        while True:
            attempt += 1
            try:
                return await asyncpg.connect(self.dsn, server_settings=self._server_settings(),
                                             timeout=max(1.0, min(10.0, deadline - time.monotonic())))
            except _RETRYABLE as exc:
                left = deadline - time.monotonic()
                reason = _reason(exc)
                if left <= 0:
                    waited = f" (retried for {self.connect_timeout:g} s)" if self.connect_timeout else ""
                    raise StoreUnavailable(f"cannot connect to PostgreSQL at {safe_dsn(self.dsn)}: {reason}{waited}") from None
                _log.warning("database_unreachable", database=safe_dsn(self.dsn), reason=reason, attempt=attempt,
                             retry_in_s=round(min(delay, left), 2))
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 5.0)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
                # Wrong password, unknown database, malformed DSN: retrying cannot help.
                raise StoreUnavailable(f"cannot use PostgreSQL at {safe_dsn(self.dsn)}: {_reason(exc)}") from None

    async def open(self) -> None:
        conn = await self._connect_with_retry()
        try:
            await self._migrate(conn)
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            init=_init_connection,
            server_settings=self._server_settings(),
        )

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        """Apply pending migrations, one transaction each, serialised across processes by an advisory lock."""
        key = _lock_key(self.schema or "")
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
            if self.schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        for version, script in migration_scripts("postgres"):
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
                # Re-check under the lock: another process may have applied it while we waited.
                if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                    continue
                await conn.execute(script)  # simple protocol: a script of several statements
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                self.applied_migrations.append(version)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            if self.drop_schema_on_close and self.schema:
                async with pool.acquire() as conn:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await pool.close()

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reader]:
        started = time.perf_counter()
        try:
            async with self._require_pool().acquire() as conn:
                yield SqlOps(_Conn(conn, self._unnest))
        finally:
            if self.on_timing is not None:
                self.on_timing("read", time.perf_counter() - started)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        started = time.perf_counter()
        try:
            async with self._require_pool().acquire() as conn:
                async with conn.transaction():
                    ops = SqlOps(_Conn(conn, self._unnest), row_lock=_ROW_LOCK)
                    ops.emitting = self.emit_events
                    yield ops
                    # Last, so the tenant's outbox head is the last lock taken and is held only until COMMIT.
                    await ops.flush_outbox()
        finally:
            if self.on_timing is not None:
                self.on_timing("write", time.perf_counter() - started)


# Connection failures worth waiting out at start-up: nothing listening yet, the server starting or
# full, DNS not ready, a connect that timed out.
_RETRYABLE = (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)
_log = structlog.get_logger("scim_gateway.store")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def safe_dsn(dsn: str) -> str:
    """``host:port/database`` of a DSN: never its password."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "postgresql://(invalid URL)"
    return f"{host}{port}{parts.path or ''}"
