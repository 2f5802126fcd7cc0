"""SQLite's write path: statements on the loop, COMMIT on the writer thread, group commit.

Each ``write()`` returns only after its own changes are committed; a failing transaction in a group
takes nothing else with it; a waiting writer that gives up never strands the group; a lock held by
another process is waited for off the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.store.base import TenantRow
from gateway.store.sqlite import SqliteStore


def _tenant(i: int) -> TenantRow:
    return TenantRow(f"t{i}", f"t{i}", "generic", False, False, {"source": "portal"}, {}, "2020")


def _committed(path: Path) -> set[str]:
    conn = sqlite3.connect(str(path))
    try:
        return {r[0] for r in conn.execute("SELECT id FROM tenants")}
    finally:
        conn.close()


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = SqliteStore(str(tmp_path / "w.db"))
    await s.open()
    yield s
    await s.close()


async def test_group_commit_commits_concurrent_writers_together(store: SqliteStore, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    commits = 0
    real_commit = store._commit

    async def counting(*args: Any, **kwargs: Any) -> None:
        nonlocal commits
        commits += 1
        await real_commit(*args, **kwargs)

    monkeypatch.setattr(store, "_commit", counting)
    acknowledged: set[str] = set()

    async def one(i: int) -> None:
        async with store.write() as tx:
            await tx.insert_tenant(_tenant(i))
            await asyncio.sleep(0)  # let the others queue up behind this transaction
            if i % 5 == 0:
                raise ValueError("this one fails")
        # acknowledged: must already be visible to another connection
        assert f"t{i}" in _committed(tmp_path / "w.db")
        acknowledged.add(f"t{i}")

    results = await asyncio.gather(*(one(i) for i in range(40)), return_exceptions=True)
    failed = {i for i, r in enumerate(results) if isinstance(r, ValueError)}
    assert failed == {i for i in range(40) if i % 5 == 0}
    assert not [r for r in results if r is not None and not isinstance(r, ValueError)]
    assert _committed(tmp_path / "w.db") == acknowledged == {f"t{i}" for i in range(40) if i % 5}
    assert 1 <= commits < len(acknowledged)  # writers that waited rode on a shared COMMIT


async def test_cancelled_waiter_never_strands_the_group(store: SqliteStore, tmp_path: Path) -> None:
    go = asyncio.Event()

    async def first() -> None:
        async with store.write() as tx:
            await tx.insert_tenant(_tenant(1))
            await go.wait()

    async def second() -> None:
        async with store.write() as tx:
            await tx.insert_tenant(_tenant(2))

    a = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    b = asyncio.create_task(second())
    await asyncio.sleep(0.01)  # b waits for the lock
    go.set()
    b.cancel()  # a defers its COMMIT to b, which then gives up
    await asyncio.wait_for(a, timeout=5)
    with pytest.raises(asyncio.CancelledError):
        await b
    assert _committed(tmp_path / "w.db") == {"t1"}
    async with store.write() as tx:  # the writer is usable afterwards
        await tx.insert_tenant(_tenant(3))
    assert _committed(tmp_path / "w.db") == {"t1", "t3"}


async def test_lock_held_by_another_process_is_awaited_off_the_loop(store: SqliteStore, tmp_path: Path) -> None:
    other = sqlite3.connect(str(tmp_path / "w.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    t = asyncio.create_task(ticker())

    async def write() -> None:
        async with store.write() as tx:
            await tx.insert_tenant(_tenant(7))

    w = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not w.done() and ticks >= 5  # waiting for the lock, and the loop keeps running
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(w, timeout=10)
    t.cancel()
    assert _committed(tmp_path / "w.db") == {"t7"}


async def test_failed_lone_transaction_leaves_nothing_open(store: SqliteStore, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            await tx.insert_tenant(_tenant(1))
            raise RuntimeError("boom")
    # no transaction left open on the writer: another connection can write at once
    other = sqlite3.connect(str(tmp_path / "w.db"), timeout=0)
    other.execute("INSERT INTO tenants (id, name, created) VALUES ('x', 'x', '2020')")
    other.commit()
    other.close()
    assert _committed(tmp_path / "w.db") == {"x"}
