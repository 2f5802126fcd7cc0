"""Nothing acknowledged is lost: kill -9 a gateway under write load, restart, every 2xx write is there."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.identity.tenants import create_api_key, create_tenant
from gateway.store.sqlite import SqliteStore
from gateway.testing import free_port

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _start(db: Path, port: int, log: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "SCIM_GATEWAY_DATABASE": str(db), "SCIM_GATEWAY_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
                            env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, text=True)


def _wait(port: int) -> None:
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


@pytest.mark.slow
async def test_kill_9_under_write_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    store = SqliteStore(str(db))
    await store.open()
    tid = (await create_tenant(store, "Durable", scim_enabled=True)).id
    key = (await create_api_key(store, tid, "durability")).key
    await store.close()

    port, log = free_port(), tmp_path / "server.log"
    proc = _start(db, port, log)
    _wait(port)
    acknowledged: list[str] = []
    url = f"http://127.0.0.1:{port}/scim/v2/{tid}/Users"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/scim+json"}

    async def writer(n: int) -> None:
        async with aiohttp.ClientSession(headers=headers) as http:
            for i in range(10_000):
                try:
                    async with http.post(url, json={"schemas": [USER], "userName": f"w{n}-{i}"}) as r:
                        if r.status == 201:
                            acknowledged.append((await r.json(content_type=None))["id"])
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                    return  # the server died under us: that request was never acknowledged

    async def killer() -> None:
        while len(acknowledged) < 200:
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)

    await asyncio.wait_for(asyncio.gather(writer(1), writer(2), writer(3), killer()), timeout=120)
    proc.wait(timeout=10)
    assert len(acknowledged) >= 200

    proc = _start(db, port, log)  # restart on the same file: recovery from the WAL
    try:
        _wait(port)
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(url, params={"count": "0"}) as r:
                total = (await r.json())["totalResults"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    conn = sqlite3.connect(db)
    stored = {row[0] for row in conn.execute("SELECT id FROM users WHERE tenant_id = ?", (tid,))}
    assert set(acknowledged) <= stored and total == len(stored)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
