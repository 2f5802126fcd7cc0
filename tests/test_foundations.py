"""Foundations: the plugin-facing types, the route table, the layering and the activity log's record."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway import ScimRequest, Tenant, hookimpl
from gateway.store.base import TenantRow
from gateway.testing import USER_SCHEMA, ScimClient


class TenantSpy:
    """Claims requests with ``X-Spy: 1`` and keeps the tenant object it was handed."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def scim_identify_client(self, request: ScimRequest, tenant: Tenant) -> str | None:
        self.seen.append(tenant)
        return "spy" if request.headers.get("x-spy") == "1" else None


@pytest.fixture
def spy() -> TenantSpy:
    return TenantSpy()


@pytest.fixture
def gateway_plugins(spy: TenantSpy) -> list[Any]:
    return [("spy", spy)]


async def test_plugins_see_a_read_only_tenant_of_their_own_not_the_store_row(scim: ScimClient, spy: TenantSpy) -> None:
    status, _, _ = await scim.get("/Users", headers={"X-Spy": "1"})
    assert status == 200
    tenant = spy.seen[-1]
    assert type(tenant) is Tenant and not isinstance(tenant, TenantRow)
    assert (tenant.id, tenant.idp, tenant.scim_enabled) == (scim.tenant.id, "auto", True)
    assert not hasattr(tenant, "role_mapping")  # store columns the core owns stay out of plugin reach
    with pytest.raises(dataclasses.FrozenInstanceError):
        tenant.scim_enabled = False
    with pytest.raises(TypeError):
        tenant.settings["x"] = 1  # type: ignore[index]
