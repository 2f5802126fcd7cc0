"""Shared fixtures: the plugin-author kit, plus a store fixture run on every configured backend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from gateway.store import Store

pytest_plugins = ["gateway.testing"]

POSTGRES_DSN = os.environ.get("SCIM_GATEWAY_TEST_POSTGRES")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_DSN else [])]


def make_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        from gateway.store.sqlite import SqliteStore

        return SqliteStore(str(tmp_path / "store.db"))
    from gateway.store.postgres import PostgresStore

    assert POSTGRES_DSN
    return PostgresStore(POSTGRES_DSN, schema=f"test_{uuid.uuid4().hex[:12]}", drop_schema_on_close=True)


@pytest.fixture(params=BACKENDS)
async def store(request: Any, tmp_path: Path) -> AsyncIterator[Store]:
    """An open, migrated, empty store on each backend (PostgreSQL when SCIM_GATEWAY_TEST_POSTGRES is set)."""
    s = make_store(request.param, tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=BACKENDS)
def unopened_store(request: Any, tmp_path: Path) -> Store:
    """A store on each configured backend, not yet opened: for an app whose lifecycle opens and closes it."""
    return make_store(request.param, tmp_path)


@pytest.fixture
def server(tmp_path: Path, request: Any) -> Any:
    """A real `scim-gateway serve --demo` process on a free port: yields {'url', 'key'}.

    ``@pytest.mark.server_env(NAME="value")`` adds settings to the process's environment."""
    from gateway.testing import free_port

    port = free_port()
    log_path = tmp_path / "server.log"
    log_file = log_path.open("w")  # a file, not a pipe: an undrained pipe would block the server's logging
    env = {**os.environ, "SCIM_GATEWAY_DATABASE": str(tmp_path / "serve.db"), "SCIM_GATEWAY_LOG_JSON": "true"}
    env.pop("SCIM_GATEWAY_PUBLIC_URL", None)
    marker = request.node.get_closest_marker("server_env")
    env.update(marker.kwargs if marker else {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--demo", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=log_file, text=True,
    )
    info: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.time() + 20
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("SCIM endpoint:"):
            info["url"] = line.split()[-1]
        if line.startswith("API key"):
            info["key"] = line.split()[-1]
        if line.startswith("Portal link"):
            info["portal"] = line.split()[-1]
        if line.startswith("Serving on"):
            break
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield info
    proc.terminate()
    proc.wait(timeout=10)
    log_file.close()
    logs = log_path.read_text()
    assert info["key"] not in logs  # no key in any log line




@pytest.fixture(params=BACKENDS)
def backend_app(request: Any, tmp_path: Path, gateway_plugins: list[Any]) -> Any:
    """A gateway app on each backend: a SQLite file, and PostgreSQL (own schema) when configured.

    Override ``gateway_app`` with it to run a module's HTTP tests on both backends.
    """
    from gateway.app import create_app
    from gateway.settings import Settings
    from gateway.testing import build_app

    if request.param == "sqlite":
        return build_app(tmp_path / "gateway.db", plugins=gateway_plugins)
    assert POSTGRES_DSN
    settings = Settings(database=POSTGRES_DSN, public_url="https://scim.example.test")
    return create_app(settings, plugins=gateway_plugins, store=make_store("postgres", tmp_path))
