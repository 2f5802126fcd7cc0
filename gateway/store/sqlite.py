"""SQLite backend (aiosqlite): WAL, foreign keys, busy timeout, one writer and a small reader pool."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
import time
from typing import Any, AsyncIterator, Callable, Sequence

import aiosqlite

from gateway.core.sqlfilter import SQLITE_FUNCTIONS
from gateway.store.base import Reader, StoreConflict, StoreUnavailable, Tx
from gateway.store.migrations import migration_scripts
from gateway.store.sql import SqlOps

_BUSY_TIMEOUT_MS = 10_000


class _Conn:
    dialect = "sqlite"

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self.db.execute_fetchall(sql, params))

    async def fetchrow(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        rows = await self.db.execute_fetchall(sql, params)  # one hop to the connection's thread, not three
        return next(iter(rows), None)

    # DML leaves nothing to fetch, so the cursor is not closed in a second round trip to the
    # connection's thread; sqlite3 has already reset the statement when execute returns.
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            return (await self.db.execute(sql, params)).rowcount
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise StoreConflict(_conflict_detail(str(exc))) from None
            raise

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        return (await self.db.executemany(sql, rows)).rowcount


class _SyncConn:
    """A read-only connection used on the event loop's own thread for point lookups.

    An indexed lookup costs a few microseconds in SQLite itself but hundreds when handed to a worker
    thread and back; scans never come here (SqlOps sends them to ``scan_conn``). WAL readers never
    wait for the writer, so this cannot block the loop on a lock.
    """

    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.execute(sql, params).fetchall()

    async def fetchrow(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        return self.db.execute(sql, params).fetchone()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        raise RuntimeError("the point-read connection is read-only")

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        raise RuntimeError("the point-read connection is read-only")


def _conflict_detail(message: str) -> str:
    # "UNIQUE constraint failed: users.tenant_id, users.user_name_ci" -> "userName"
    if "user_name_ci" in message:
        return "userName must be unique"
    return "unique constraint"


_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous = NORMAL",
)


class SqliteStore:
    dialect = "sqlite"

    def __init__(self, path: str, *, readers: int = 2) -> None:
        self.path = path
        self._n_readers = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._cycle: Any = None
        self._point: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
        self.applied_migrations: list[int] = []
        self.on_timing: Callable[[str, float], None] | None = None
        self.emit_events = True  # the gateway's events switch (SCIM_GATEWAY_EVENTS_ENABLED)

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            for pragma in _PRAGMAS:
                await db.execute(pragma)
            # Case-insensitive comparisons in SQL must fold exactly as Python does (SQLite's lower() is ASCII-only).
            for name, (nargs, fn) in SQLITE_FUNCTIONS.items():
                await db.create_function(name, nargs, fn, deterministic=True)
        except BaseException:
            await db.close()  # else its (non-daemon) thread keeps the process alive: a hang, not an error
            raise
        return db

    async def open(self) -> None:
        """Connect and migrate; :class:`StoreUnavailable` with a one-line reason when the file can't serve."""
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise StoreUnavailable(f"cannot open SQLite database {self.path}: directory {parent} does not exist")
        try:
            await self._open()
        except sqlite3.DatabaseError as exc:
            await self.close()
            message = str(exc)
            if "not a database" in message or "malformed" in message:
                raise StoreUnavailable(f"{self.path} is not a SQLite database ({message})") from None
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {message}") from None
        except BaseException:
            await self.close()
            raise

    async def _open(self) -> None:
        self._writer = await self._connect()
        await self._migrate(self._writer)
        if self.path == ":memory:":
            self._readers = [self._writer]
        else:
            self._readers = [await self._connect() for _ in range(self._n_readers)]
            self._point = sqlite3.connect(self.path, isolation_level=None)
            for pragma in (*_PRAGMAS[1:], "PRAGMA query_only = ON"):
                self._point.execute(pragma)
            for name, (nargs, fn) in SQLITE_FUNCTIONS.items():
                self._point.create_function(name, nargs, fn, deterministic=True)
        self._cycle = itertools.cycle(self._readers)

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT)")
        done = {r[0] for r in await db.execute_fetchall("SELECT version FROM schema_migrations")}
        self.applied_migrations = []
        for version, script in migration_scripts("sqlite"):
            if version in done:
                continue
            self.applied_migrations.append(version)
            # executescript commits; wrap the script and its bookkeeping in one explicit transaction.
            await db.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"INSERT INTO schema_migrations VALUES ({version}, datetime('now'));\nCOMMIT;"
            )

    async def close(self) -> None:
        for db in {id(d): d for d in [*self._readers, *( [self._writer] if self._writer else [])]}.values():
            await db.close()
        self._readers = []
        self._writer = None
        if self._point is not None:
            self._point.close()
            self._point = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reader]:
        scan = _Conn(next(self._cycle))
        timing = self.on_timing
        if timing is None:
            yield SqlOps(_SyncConn(self._point) if self._point is not None else scan, scan_conn=scan)
            return
        started = time.perf_counter()
        try:
            yield SqlOps(_SyncConn(self._point) if self._point is not None else scan, scan_conn=scan)
        finally:
            timing("read", time.perf_counter() - started)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        assert self._writer is not None, "store is not open"
        async with self._write_lock:
            db = self._writer
            started = time.perf_counter()
            await db.execute("BEGIN IMMEDIATE")
            try:
                ops = SqlOps(_Conn(db))
                ops.emitting = self.emit_events
                yield ops
                await ops.flush_outbox()  # last statement before COMMIT: the events commit with the change
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            else:
                await db.execute("COMMIT")
            finally:
                if self.on_timing is not None:
                    self.on_timing("write", time.perf_counter() - started)
