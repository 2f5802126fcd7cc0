"""Fixtures for identity tests: a gateway with an admin token and an admin API client."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from gateway.testing import ScimClient, build_app
from identity_kit import ADMIN_TOKEN, Admin


@pytest.fixture
def gateway_app(gateway_database: str, gateway_plugins: list[Any]) -> web.Application:
    return build_app(gateway_database, plugins=gateway_plugins, admin_token=ADMIN_TOKEN)


@pytest.fixture
async def admin(scim: ScimClient) -> Admin:
    return Admin(scim.client)
