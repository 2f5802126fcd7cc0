"""Fixtures for change-feed tests: a live gateway on each backend with the admin API on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from feed_kit import BACKENDS, Feed, feed_settings, feed_store

from gateway.app import create_app
from gateway.testing import ScimClient, add_tenant


@pytest.fixture(params=BACKENDS)
def backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def make_feed(
    backend: str, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> Callable[..., Awaitable[Feed]]:
    """``await make_feed(**settings)``: a started gateway on the backend and a fresh tenant (SCIM on)."""

    async def make(name: str = "Feed", idp: str = "auto", **overrides: Any) -> Feed:
        app = create_app(feed_settings(**overrides), store=feed_store(backend, tmp_path / name), load_entrypoints=True)
        client = await aiohttp_client(app)
        tenant, key = await add_tenant(client.app, name, idp=idp)
        return Feed(ScimClient(client, tenant, key))

    return make


@pytest.fixture
async def feed(make_feed: Callable[..., Awaitable[Feed]]) -> AsyncIterator[Feed]:
    yield await make_feed()
