"""Pending deliveries survive kill -9: a real `scim-gateway serve` is SIGKILLed while retrying, then restarted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.events.endpoints import WebhookCreate, create_webhook
from gateway.identity.tenants import create_api_key, create_tenant
from gateway.store.sqlite import SqliteStore
from gateway.testing import free_port
from gateway.webhooks import verify

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _serve(db: Path, port: int, log: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "SCIM_GATEWAY_DATABASE": str(db), "SCIM_GATEWAY_LOG_LEVEL": "WARNING",
           "SCIM_GATEWAY_WEBHOOK_POLL_SECONDS": "0.05", "SCIM_GATEWAY_WEBHOOK_RETRY_BASE_SECONDS": "0.1",
           "SCIM_GATEWAY_WEBHOOK_RETRY_FACTOR": "1.5", "SCIM_GATEWAY_WEBHOOK_RETRY_MAX_SECONDS": "0.3",
           "SCIM_GATEWAY_WEBHOOK_TIMEOUT_SECONDS": "1", "SCIM_GATEWAY_WEBHOOK_MAX_ATTEMPTS": "1000"}
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)], env=env,
                            stdout=log.open("a"), stderr=subprocess.STDOUT, text=True, start_new_session=True)


async def _wait_port(port: int) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("server did not start")


async def _until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_pending_deliveries_resume_after_sigkill_and_restart(tmp_path: Path) -> None:
    requests: list[tuple[int, dict[str, str], bytes]] = []
    healthy = False

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        status = 200 if healthy else 503
        requests.append((status, dict(request.headers), body))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = TestServer(app, host="127.0.0.1")
    await receiver.start_server()

    db = tmp_path / "durable.db"
    store = SqliteStore(str(db))
    await store.open()
    tid = (await create_tenant(store, "Durable", scim_enabled=True)).id
    key = (await create_api_key(store, tid, "durability")).key
    secret = (await create_webhook(store, tid, WebhookCreate(url=str(receiver.make_url("/hook")))))["secret"]
    await store.close()

    port, log = free_port(), tmp_path / "server.log"
    proc = _serve(db, port, log)
    try:
        await _wait_port(port)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/scim+json"}
        async with aiohttp.ClientSession(headers=headers) as http:
            for i in range(20):
                async with http.post(f"http://127.0.0.1:{port}/scim/v2/{tid}/Users",
                                     json={"schemas": [USER], "userName": f"k{i}"}) as r:
                    assert r.status == 201
        await _until(lambda: len(requests) >= 5, 30)  # the first delivery is being retried
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        failed_before = len(requests)
        assert all(s == 503 for s, _, _ in requests)

        healthy = True
        proc = _serve(db, port, log)
        await _wait_port(port)
        await _until(lambda: sum(1 for s, _, _ in requests if s == 200) >= 20, 60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        await receiver.close()

    delivered = [json.loads(b) for s, _, b in requests if s == 200]
    assert [e["sequence"] for e in delivered] == list(range(1, 21))  # every event, in order, once per success
    assert [e["data"]["userName"] for e in delivered] == [f"k{i}" for i in range(20)]
    assert all(verify(secret, h["Scim-Gateway-Signature"], b) for _, h, b in requests)
    assert failed_before >= 5 and len(requests) > failed_before
    assert secret not in log.read_text()
