"""Portal fixtures: the gateway on each backend and an :class:`Http` client over a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from gateway.store import Store
from portal_kit import PUBLIC, TOKEN, Http


@pytest.fixture
def gateway_app(unopened_store: Store, tmp_path: Path) -> web.Application:
    """The gateway on each configured backend: sessions must work wherever the store lives."""
    settings = Settings(database=str(tmp_path / "portal.db"), admin_token=TOKEN, public_url=PUBLIC)
    return create_app(settings, store=unopened_store)


@pytest.fixture
async def http(aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
               gateway_app: web.Application) -> Http:
    return Http(await aiohttp_client(gateway_app))


