"""The SCIM tab's "Test connection": the tenant's IT admin runs the self-test from the portal and reads
the step list (a real Chromium over a live gateway)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from browser_kit import Gw, shot


def open_scim_tab(page: Any, live: Gw, tenant_id: str) -> None:
    page.goto(live.link(tenant_id))
    page.get_by_role("button", name="Open the portal").click()
    page.get_by_role("heading", name="API Keys", level=1).wait_for()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Identity").click()
    page.get_by_role("tab", name="SCIM", selected=True).wait_for()


def test_test_connection_lists_every_step_passing(page_for: Callable[..., Any], live: Gw, screens: Path) -> None:
    tenant = live.tenant("Selftest Co", idp="entra", scim_enabled=True)
    page = page_for()
    open_scim_tab(page, live, tenant["id"])
    form = page.get_by_role("form", name="Test connection")
    assert form.get_by_label("Sequence of").input_value() == "entra"  # the tenant's own IdP first
    form.get_by_role("button", name="Test connection").click()
    page.get_by_text("Connection test passed: all").wait_for(timeout=60_000)
    steps = page.get_by_role("list", name="Test connection steps").get_by_role("listitem")
    assert steps.count() >= 20
    assert steps.first.inner_text().startswith("Pass test connection user GET /Users?filter=")
    assert page.locator('.selftest-steps li[data-result="pass"]').count() == steps.count()
    shot(page, screens, "20-scim-test-connection-passed")
    # nothing the test created is left, and its temporary key is revoked
    status, users = live.api("GET", f"/tenants/{tenant['id']}/users")
    assert status == 200 and users["users"] == []
    status, keys = live.api("GET", f"/tenants/{tenant['id']}/api-keys")
    assert [k["revoked"] is not None for k in keys["api_keys"]] == [True]


def test_test_connection_with_scim_off_fails_at_the_first_step(page_for: Callable[..., Any], live: Gw, screens: Path) -> None:
    tenant = live.tenant("Selftest Off", idp="okta")  # SCIM off, as every new tenant
    page = page_for()
    open_scim_tab(page, live, tenant["id"])
    form = page.get_by_role("form", name="Test connection")
    form.get_by_label("Sequence of").select_option("okta")
    form.get_by_role("button", name="Test connection").click()
    page.get_by_text("Connection test failed: 1 of").wait_for(timeout=60_000)
    first = page.get_by_role("list", name="Test connection steps").get_by_role("listitem").first
    text = first.inner_text()
    assert text.startswith("Fail test api credentials GET /Users?count=1&startIndex=1 → 403")
    assert "SCIM provisioning is disabled" in text and "The IdP would: fail the provisioning task" in text
    assert "developer.okta.com" in text
    assert page.locator('.selftest-steps li[data-result="not_run"]').count() >= 20
    shot(page, screens, "21-scim-test-connection-scim-off")
