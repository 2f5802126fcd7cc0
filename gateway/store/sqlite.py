"""SQLite backend: WAL, foreign keys, busy timeout, one writer with group commit, point reads on the loop, a scan pool."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
import time
from typing import Any, AsyncIterator, Callable, Sequence

import aiosqlite

from gateway.core.sqlfilter import SQLITE_FUNCTIONS
from gateway.store.authcache import AuthCache
from gateway.store.base import Reader, StoreConflict, StoreUnavailable, Tx
from gateway.store.migrations import migration_scripts
from gateway.store.sql import SqlOps

_BUSY_TIMEOUT_MS = 10_000


class _Conn:
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


def _translate(exc: sqlite3.IntegrityError) -> Exception:
    return StoreConflict(_conflict_detail(str(exc))) if "UNIQUE" in str(exc) else exc


# A statement binding more values than this (an IN list of ids, a multi-row VALUES, an executemany of
# many rows) costs time in proportion to them: it runs on the writer's thread, so the event loop keeps
# serving other requests (other tenants) meanwhile. Below it, a statement costs microseconds, less than
# the hand-off to the thread and back.
INLINE_MAX_VALUES = 64


class _Reading:
    """``async with store.read()``: a plain class, not a generator context manager (every GET opens one)."""

    __slots__ = ("store", "started")

    def __init__(self, store: "SqliteStore") -> None:
        self.store = store
        self.started = 0.0

    async def __aenter__(self) -> Reader:
        store = self.store
        point = store._point
        assert point is not None, "store is not open"
        if store._cycle is None:  # ":memory:": one connection for everything
            return SqlOps(_SyncConn(point), scan_conn=_WriteConn(point, store._to_end, inline_max=-1))
        if store.on_timing is not None:
            self.started = time.perf_counter()
        return SqlOps(_SyncConn(point), scan_conn=_Conn(next(store._cycle)))

    async def __aexit__(self, *exc: object) -> None:
        timing = self.store.on_timing
        if timing is not None and self.started:
            timing("read", time.perf_counter() - self.started)


class _WriteConn:
    """The writer connection inside a write transaction.

    We hold SQLite's write lock (BEGIN IMMEDIATE) for the whole transaction, so no statement here can
    wait for another writer, and WAL readers never block a writer: an indexed statement costs
    microseconds, a fraction of a hand-off to a worker thread and back, so it runs on the event loop's
    own thread. Statements whose cost grows with the request (more than ``inline_max`` bound values)
    go to the writer's thread; statements whose cost grows with the data go through ``scan_conn``
    (``inline_max=-1``: always the thread). The write lock keeps the connection to one user at a time.
    """

    def __init__(self, db: sqlite3.Connection, run: Any, *, inline_max: int = INLINE_MAX_VALUES) -> None:
        self.db = db
        self._run = run
        self._inline_max = inline_max

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.IntegrityError as exc:
            raise _translate(exc) from None

    def _execute(self, sql: str, params: Sequence[Any]) -> int:
        try:
            return self.db.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            raise _translate(exc) from None

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        try:
            return self.db.executemany(sql, rows).rowcount
        except sqlite3.IntegrityError as exc:
            raise _translate(exc) from None

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if len(params) > self._inline_max:
            return await self._run(lambda: self._fetch(sql, params))  # type: ignore[no-any-return]
        return self._fetch(sql, params)

    async def fetchrow(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        rows = await self.fetch(sql, params)  # fetchall: a RETURNING statement is stepped to its end
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        if len(params) > self._inline_max:
            return await self._run(lambda: self._execute(sql, params))  # type: ignore[no-any-return]
        return self._execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if len(rows) * (len(rows[0]) if rows else 0) > self._inline_max:
            return await self._run(lambda: self._executemany(sql, rows))  # type: ignore[no-any-return]
        return self._executemany(sql, rows)


_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous = NORMAL",
)
# Transactions waiting for the write lock join the one in progress, up to this many per COMMIT.
_GROUP_COMMIT_MAX = 64


class SqliteStore:
    """SQLite: one writer connection, point reads on the loop's thread, scans on a small reader pool.

    Writes: one transaction at a time holds the writer connection. Its statements run on the event
    loop's thread; only the COMMIT (which may checkpoint and so touch the disk) goes to the writer's
    own thread: one thread hop per transaction. Group commit: when other write transactions are
    already waiting, a finished transaction does not commit on its own; it ends at a savepoint and
    hands the still-open SQLite transaction to the next one, and the last of the group commits for
    all. Each ``write()`` returns only once its changes are committed, and fails if the commit fails;
    a transaction that raises is rolled back to its savepoint without touching the others.
    """

    dialect = "sqlite"

    def __init__(self, path: str, *, readers: int = 2) -> None:
        self.path = path
        self._n_readers = readers
        self._writer: sqlite3.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._cycle: Any = None
        self._point: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._waiting = 0  # write() calls queued for the lock
        self._batch: list[asyncio.Future[None]] = []  # transactions done, waiting for the group's COMMIT
        self._flusher: asyncio.Task[None] | None = None
        self.emit_events = True  # the gateway's events switch (SCIM_GATEWAY_EVENTS_ENABLED)
        self.applied_migrations: list[int] = []
        self.on_timing: Callable[[str, float], None] | None = None
        # key hash -> key and tenant, emptied by any commit (gateway.store.authcache); None for ":memory:",
        # whose single connection cannot see its own commits in data_version
        self.auth_cache: AuthCache | None = None

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

    def _connect_sync(self, *, read_only: bool = False) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            for pragma in (*_PRAGMAS[1:], "PRAGMA query_only = ON") if read_only else _PRAGMAS:
                db.execute(pragma)
            for name, (nargs, fn) in SQLITE_FUNCTIONS.items():
                db.create_function(name, nargs, fn, deterministic=True)
        except BaseException:
            db.close()
            raise
        return db

    async def open(self) -> None:
        """Connect and migrate; :class:`StoreUnavailable` with a one-line reason when the file can't serve.

        A missing directory is an error, never created silently (a mistyped path would grow a tree).
        """
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
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._writer = self._connect_sync()
        self.applied_migrations = await self._to_end(lambda: self._migrate(self._writer))
        if self.path == ":memory:":
            self._point = self._writer
        else:
            self._readers = [await self._connect() for _ in range(self._n_readers)]
            self._point = self._connect_sync(read_only=True)
            # The loop-thread reader serves every point lookup and the substring indexes' candidates:
            # a larger page cache keeps their hot pages (default 2 MB) off the disk. 32 MB at most.
            self._point.execute("PRAGMA cache_size = -32768")
            point = self._point
            self.auth_cache = AuthCache(lambda: int(point.execute("PRAGMA data_version").fetchone()[0]))
        self._cycle = itertools.cycle(self._readers) if self._readers else None

    @staticmethod
    def _migrate(db: sqlite3.Connection | None) -> list[int]:
        """Apply pending migrations; the versions applied."""
        assert db is not None
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT)")
        done = {r[0] for r in db.execute("SELECT version FROM schema_migrations").fetchall()}
        applied: list[int] = []
        for version, script in migration_scripts("sqlite"):
            if version in done:
                continue
            applied.append(version)
            # executescript commits; wrap the script and its bookkeeping in one explicit transaction.
            db.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"INSERT INTO schema_migrations VALUES ({version}, datetime('now'));\nCOMMIT;"
            )
        return applied

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        for db in self._readers:
            await db.close()
        self._readers = []
        if self._point is not None and self._point is not self._writer:
            self._point.close()
        self._point = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await self._to_end(writer.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def read(self) -> "_Reading":
        assert self._point is not None, "store is not open"
        return _Reading(self)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        timing = self.on_timing
        if timing is None:
            async with self._write() as tx:
                yield tx
            return
        started = time.perf_counter()  # waiting for the lock and the group's COMMIT included
        try:
            async with self._write() as tx:
                yield tx
        finally:
            timing("write", time.perf_counter() - started)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Tx]:
        db = self._writer
        assert db is not None, "store is not open"
        self._waiting += 1
        try:
            await self._write_lock.acquire()
        finally:
            self._waiting -= 1
        done: asyncio.Future[None] | None = None
        try:
            if not db.in_transaction:
                await self._begin(db)
            db.execute("SAVEPOINT tx")
            try:
                ops = SqlOps(_WriteConn(db, self._to_end), scan_conn=_WriteConn(db, self._to_end, inline_max=-1))
                ops.emitting = self.emit_events
                yield ops
                await ops.flush_outbox()  # last statement of this transaction: its events commit with it
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK TO tx")
                    db.execute("RELEASE tx")
                    if not self._batch:
                        db.execute("ROLLBACK")  # nothing else rides on this transaction
                else:  # SQLite rolled the whole transaction back (I/O error, disk full): the group is lost
                    self._fail_batch(exc)
                raise
            db.execute("RELEASE tx")
            done = asyncio.get_running_loop().create_future()
            self._batch.append(done)
        finally:
            self._end_turn(db)
        await done

    def _end_turn(self, db: sqlite3.Connection) -> None:
        """Pass the writer on: to a waiting transaction, which joins the open one, or to the COMMIT."""
        if self._batch and not (self._waiting and len(self._batch) < _GROUP_COMMIT_MAX):
            # The COMMIT runs in its own task, which releases the lock: a caller that gives up waiting
            # (cancelled) can neither interrupt it nor leave the group uncommitted.
            batch, self._batch = self._batch, []
            asyncio.get_running_loop().create_task(self._commit(db, batch, release=True))
            return
        if self._batch and (self._flusher is None or self._flusher.done()):
            # Others wait for the lock and will commit; should they all give up waiting, this does.
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        self._write_lock.release()

    async def _to_end(self, fn: Any) -> Any:
        """Run ``fn`` on the writer's thread; if the caller is cancelled meanwhile, still wait for it to end
        (the connection must never be used from two threads at once)."""
        fut = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            await asyncio.wait([fut])
            raise

    async def _begin(self, db: sqlite3.Connection) -> None:
        # Another process may hold the write lock (a CLI command, a second server): never wait for it
        # on the event loop. Try without waiting; when busy, wait (busy_timeout) on the writer thread.
        db.execute("PRAGMA busy_timeout = 0")
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise

        def begin_waiting() -> None:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            try:
                db.execute("BEGIN IMMEDIATE")
            finally:
                db.execute("PRAGMA busy_timeout = 0")

        try:
            await self._to_end(begin_waiting)
        except asyncio.CancelledError:
            if db.in_transaction and not self._batch:
                db.execute("ROLLBACK")
            raise

    async def _commit(self, db: sqlite3.Connection, batch: list[asyncio.Future[None]], *, release: bool) -> None:
        try:
            await self._to_end(lambda: db.execute("COMMIT"))
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            for fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(f"commit interrupted: {exc!r}"))
        else:
            if self.auth_cache is not None:
                self.auth_cache.expire()  # this process's own commit: read the change counter again
            for fut in batch:
                if not fut.done():
                    fut.set_result(None)
        finally:
            if release:
                self._write_lock.release()

    def _fail_batch(self, exc: BaseException) -> None:
        batch, self._batch = self._batch, []
        for fut in batch:
            if not fut.done():
                fut.set_exception(RuntimeError(f"the group commit this write was part of failed: {exc!r}"))

    async def _flush(self) -> None:
        async with self._write_lock:
            if self._batch and self._writer is not None:
                batch, self._batch = self._batch, []
                await self._commit(self._writer, batch, release=False)
