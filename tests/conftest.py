"""Shared fixtures: the plugin-author kit, plus a store fixture run on every configured backend."""

from __future__ import annotations

import os
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
