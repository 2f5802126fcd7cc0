"""Authentication answered from a per-process cache stays exact across processes.

Two real ``scim-gateway serve`` processes share one SQLite file. Process A authenticates a key (and
so caches it); the key is revoked, or the tenant's SCIM switched off, through process B's admin API;
the very next request to A is refused. The cache only ever answers while nothing was committed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from gateway.cli import main
from gateway.testing import free_port

ADMIN = "adm_test_two_processes"


def _start(db: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SCIM_GATEWAY_ADMIN_TOKEN": ADMIN, "SCIM_GATEWAY_LOG_JSON": "true"}
    env.pop("SCIM_GATEWAY_DATABASE", None)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--database", str(db), "serve", "--port", str(port)],
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server on {port} did not start: {log.read_text()}")


def _call(method: str, url: str, token: str, body: Any = None) -> int:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}",
                                                               "Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def two_servers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[dict[str, Any]]:
    db = tmp_path / "shared.db"
    assert main(["--database", str(db), "tenants", "create", "Acme", "--idp", "generic", "--scim", "on", "--json"]) == 0
    tenant = json.loads(capsys.readouterr().out)
    assert main(["--database", str(db), "keys", "create", tenant["id"], "--name", "idp", "--json"]) == 0
    key = json.loads(capsys.readouterr().out)
    pa, pb = free_port(), free_port()
    a = _start(db, pa, tmp_path / "a.log")
    b = _start(db, pb, tmp_path / "b.log")
    try:
        yield {"a": f"http://127.0.0.1:{pa}", "b": f"http://127.0.0.1:{pb}", "tenant": tenant["id"],
               "key": key["key"], "key_id": key["id"]}
    finally:
        for p in (a, b):
            p.terminate()
            p.wait(timeout=10)


def test_auth_revocation_in_one_process_refuses_the_next_request_in_another(two_servers: dict[str, Any]) -> None:
    s = two_servers
    users = f"{s['a']}/scim/v2/{s['tenant']}/Users"
    for _ in range(3):  # authenticated, and from then on answered from A's cache
        assert _call("GET", users, s["key"]) == 200
    assert _call("DELETE", f"{s['b']}/api/v1/tenants/{s['tenant']}/api-keys/{s['key_id']}", ADMIN) == 204
    assert _call("GET", users, s["key"]) == 401
    assert _call("GET", f"{s['b']}/scim/v2/{s['tenant']}/Users", s["key"]) == 401


def test_auth_tenant_switched_off_in_one_process_is_refused_by_another(two_servers: dict[str, Any]) -> None:
    s = two_servers
    users = f"{s['a']}/scim/v2/{s['tenant']}/Users"
    assert _call("GET", users, s["key"]) == 200
    assert _call("GET", users, s["key"]) == 200
    assert _call("PATCH", f"{s['b']}/api/v1/tenants/{s['tenant']}", ADMIN, {"scim_enabled": False}) == 200
    assert _call("GET", users, s["key"]) == 403
    assert _call("PATCH", f"{s['b']}/api/v1/tenants/{s['tenant']}", ADMIN, {"scim_enabled": True}) == 200
    assert _call("GET", users, s["key"]) == 200


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[Any, Any, Any, list[str]]]:
    """An open SQLite store with a tenant and a key, and the statements its point connection runs."""
    from gateway.identity.tenants import create_api_key, create_tenant
    from gateway.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "c.db"))
    await store.open()
    try:
        tenant = await create_tenant(store, "c", scim_enabled=True)
        key = await create_api_key(store, tenant.id, "k")
        statements: list[str] = []
        assert store._point is not None
        store._point.set_trace_callback(statements.append)
        yield store, tenant, key, statements
    finally:
        await store.close()


async def test_auth_cache_answers_without_a_statement_until_something_commits(traced: Any) -> None:
    from gateway.clock import now
    from gateway.identity.tenants import authenticate, create_api_key

    store, tenant, key, statements = traced
    other = await create_api_key(store, tenant.id, "other")
    assert await authenticate(store, tenant.id, key.key) is not None
    assert await authenticate(store, tenant.id, key.key) is not None
    assert await authenticate(store, "another-tenant", key.key) is None  # the cache keeps the tenant check
    assert len([s for s in statements if "api_keys" in s]) == 1  # one lookup; then from memory
    async with store.write() as tx:  # any commit (here: revoking another key) empties the cache
        await tx.revoke_api_key(tenant.id, other.row.id, now())
    assert await authenticate(store, tenant.id, key.key) is not None
    assert len([s for s in statements if "api_keys" in s]) == 2
    async with store.write() as tx:
        await tx.revoke_api_key(tenant.id, key.row.id, now())
    assert await authenticate(store, tenant.id, key.key) is None


async def test_auth_cache_reads_the_change_counter_once_per_loop_iteration(traced: Any) -> None:
    import asyncio

    from gateway.clock import now
    from gateway.identity.tenants import authenticate

    store, tenant, key, statements = traced
    await asyncio.sleep(0)
    for _ in range(5):  # one iteration: the counter is read once
        assert await authenticate(store, tenant.id, key.key) is not None
    assert len([s for s in statements if "data_version" in s]) == 1
    await asyncio.sleep(0)  # the next iteration reads it again
    assert await authenticate(store, tenant.id, key.key) is not None
    assert len([s for s in statements if "data_version" in s]) == 2
    async with store.write() as tx:  # this process's own commit expires the reading at once
        await tx.revoke_api_key(tenant.id, key.row.id, now())
    assert await authenticate(store, tenant.id, key.key) is None
