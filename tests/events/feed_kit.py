"""Helpers for change-feed tests: stores on each backend, settings, and the admin/feed client."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from gateway.settings import Settings
from gateway.store import Store
from gateway.testing import ScimClient

POSTGRES_DSN = os.environ.get("SCIM_GATEWAY_TEST_POSTGRES")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_DSN else [])]

ADMIN = "adm-events-test"


def feed_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"database": "unused", "public_url": "https://scim.example.test", "admin_token": ADMIN,
                              "webhook_delivery": False}
    values.update(overrides)
    return Settings(**values)


def feed_store(backend: str, path: Path, *, schema: str | None = None, drop: bool = True) -> Store:
    """A store for one test: a SQLite file under ``path``, or a fresh PostgreSQL schema (dropped at close)."""
    if backend == "sqlite":
        from gateway.store.sqlite import SqliteStore

        path.mkdir(parents=True, exist_ok=True)
        return SqliteStore(str(path / "feed.db"))
    from gateway.store.postgres import PostgresStore

    assert POSTGRES_DSN
    return PostgresStore(POSTGRES_DSN, schema=schema or f"feed_{uuid.uuid4().hex[:12]}", drop_schema_on_close=drop)


class Feed:
    """The SCIM client of one tenant, and the admin API of the same server."""

    def __init__(self, scim: ScimClient) -> None:
        self.scim = scim
        self.http = scim.client
        self.tenant_id = scim.tenant.id

    async def admin(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None,
                    token: str = ADMIN) -> tuple[int, Any]:
        resp = await self.http.request(method, f"/api/v1/tenants/{self.tenant_id}{path}", json=body,
                                       params=params, headers={"Authorization": f"Bearer {token}"})
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)

    async def page(self, **params: str) -> dict[str, Any]:
        status, body = await self.admin("GET", "/events", params=params)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def all_events(self, *, after: str | None = None, limit: int = 1000, types: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            params = {"limit": str(limit)}
            if after:
                params["after"] = after
            if types:
                params["type"] = types
            body = await self.page(**params)
            out.extend(body["data"])
            after = body["next_cursor"]
            if len(body["data"]) < limit:
                return out
