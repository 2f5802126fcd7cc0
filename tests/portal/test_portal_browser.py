"""The portal in a real Chromium, following the product document from a portal link.

Every control is found by its accessible role and the document's label: if a test can find it, so
can a screen reader, and so can an admin reading the document.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from browser_kit import Gw, call, new_user, scim, shot
from gateway.identity import portal_access

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def enter(page: Any, link: str) -> None:
    """Open a portal link and continue, as the tenant's IT admin does."""
    page.goto(link)
    page.get_by_role("button", name="Open the portal").click()
    page.get_by_role("heading", name="API Keys", level=1).wait_for()


def create_key(page: Any, name: str) -> str:
    page.get_by_role("button", name="Create API key").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Save").click()
    field = page.get_by_label("API key", exact=True)
    field.wait_for()
    value: str = field.input_value()
    assert value.startswith("scimgw_")
    return value


def open_identity(page: Any, tab: str) -> None:
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Identity").click()
    page.get_by_role("tab", name=tab).click()
    page.get_by_role("tab", name=tab, selected=True).wait_for()


def test_portal_follows_the_product_document_from_a_portal_link(page_for: Callable[..., Any], live: Gw, screens: Path) -> None:
    tenant = live.tenant("Agility Credit")  # SCIM off, as every new tenant
    link = live.link(tenant["id"])
    page = page_for()
    page.goto(link)
    page.get_by_role("heading", name="Portal link").wait_for()
    shot(page, screens, "01-portal-link")
    page.get_by_role("button", name="Open the portal").click()
    page.get_by_role("heading", name="API Keys", level=1).wait_for()

    # Step 1: Settings → Account → API Keys → Create API key, a descriptive name, save, copy the key.
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    assert crumbs.inner_text().split() == ["Settings", "→", "Account", "→", "API", "Keys"] or "API Keys" in crumbs.inner_text()
    key = create_key(page, "Okta SCIM")
    assert page.get_by_text("It will not be shown again").is_visible()
    page.get_by_role("button", name="Copy API key").click()
    assert page.evaluate("navigator.clipboard.readText()") == key
    shot(page, screens, "02-api-key-created")
    page.get_by_role("cell", name="Okta SCIM", exact=True).wait_for()

    # While SCIM is off the endpoint refuses the key.
    status, body = scim("GET", tenant["scim_url"] + "/Users", key)
    assert status == 403 and "Enable SCIM provisioning" in body["detail"]

    # Step 2: Identity → SCIM tab → toggle Enable SCIM provisioning on, note the URL, Save.
    open_identity(page, "SCIM")
    toggle = page.get_by_role("checkbox", name="Enable SCIM provisioning")
    assert not toggle.is_checked()
    toggle.check()
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved. SCIM provisioning is on").wait_for()
    page.get_by_role("button", name="Copy SCIM endpoint URL").click()
    endpoint = page.evaluate("navigator.clipboard.readText()")
    assert endpoint == f"{live.url}/scim/v2/{tenant['id']}" == page.get_by_role("textbox", name="SCIM endpoint URL", exact=True).input_value()
    shot(page, screens, "03-identity-scim-okta-guide")
    # the Okta guide carries the values to paste, each with its own Copy button
    guide = page.get_by_role("region", name="Setup guide")
    assert guide.get_by_role("textbox", name="Base URL", exact=True).input_value() == endpoint
    assert guide.get_by_role("textbox", name="Unique identifier field for users", exact=True).input_value() == "userName"
    assert guide.get_by_role("textbox", name="Authentication Mode", exact=True).input_value() == "HTTP Header"
    for action in ("Push New Users", "Push Profile Updates", "Push Groups"):
        assert guide.get_by_text(action, exact=True).is_visible()
    guide.get_by_role("button", name="Entra ID").click()
    assert guide.get_by_role("textbox", name="Tenant URL", exact=True).input_value() == endpoint
    assert guide.get_by_role("textbox", name="Expression", exact=True).input_value() == "SingleAppRoleAssignment([appRoleAssignments])"
    assert guide.get_by_role("textbox", name="Target attribute", exact=True).input_value() == 'roles[primary eq "true"].value'
    guide.get_by_role("button", name="Copy Expression").click()
    assert page.evaluate("navigator.clipboard.readText()") == "SingleAppRoleAssignment([appRoleAssignments])"
    assert "Secret Token" in guide.inner_text()
    shot(page, screens, "04-identity-scim-entra-guide")
    guide.get_by_role("button", name="Other SCIM clients").click()
    assert guide.get_by_role("textbox", name="Base URL", exact=True).input_value() == endpoint

    # Step 4 (the IdP syncs): provision a user with the copied URL and key.
    status, user = scim("POST", endpoint + "/Users", key, new_user("alice@agility.example"))
    assert status == 201, user
    open_identity(page, "Activity")
    row = page.get_by_role("row").filter(has_text="scim_provision").filter(has_text="alice@agility.example")
    row.wait_for()
    assert row.get_by_role("cell", name="201", exact=True).is_visible()
    # the call refused while SCIM was off is the one error of the last 24 hours, shown with its detail
    assert "Errors in the last 24 hours: 1" in page.get_by_role("status").filter(has_text="Last request").inner_text()
    assert "SCIM provisioning is disabled" in page.get_by_role("row").filter(has_text="scim_error").inner_text()

    # Debug logging adds scim_read with the full payloads.
    page.get_by_role("checkbox", name="Log successful events (debug)").check()
    page.get_by_text("Debug logging is on").wait_for()
    status, _ = scim("GET", f"{endpoint}/Users/{user['id']}", key)
    assert status == 200
    status, _ = scim("POST", endpoint + "/Users", key, new_user("alice@agility.example"))  # a duplicate: scim_error
    assert status == 409
    page.get_by_role("button", name="Refresh").click()
    read = page.get_by_role("row").filter(has_text="scim_read").first
    read.wait_for()
    details = read.get_by_role("button", name=re.compile("^Details of scim_read"))
    details.click()
    assert details.get_attribute("aria-expanded") == "true"
    payload = page.locator(f"#{details.get_attribute('aria-controls')}").get_by_label("Response payload")
    assert '"userName": "alice@agility.example"' in payload.inner_text()
    assert page.get_by_role("row").filter(has_text="scim_error").filter(has_text="uniqueness").count() == 1
    check_activity_chart(page)
    shot(page, screens, "05-identity-activity")
    page.get_by_label("Type").select_option("scim_provision")
    page.get_by_role("row").filter(has_text="scim_read").first.wait_for(state="detached")
    assert page.get_by_role("row").filter(has_text="scim_provision").count() == 1

    # The reload test's promise, on this key: after a reload only name and prefix remain.
    page.reload()
    page.get_by_role("tab", name="Activity", selected=True).wait_for()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="API Keys").click()
    page.get_by_role("cell", name="Okta SCIM", exact=True).wait_for()
    assert key not in page.content()


def check_activity_chart(page: Any) -> None:
    """The 24-hour chart counts what the events table lists (one page, all types, all within 24 hours), each
    bar's segments are as tall as their counts relative to the busiest hour, and its text alternative says so."""
    rows = page.locator("table.events tbody tr.ev")
    types = [rows.nth(i).get_attribute("class") or "" for i in range(rows.count())]
    want_errors = sum("scim_error" in t for t in types)
    want_ok = len(types) - want_errors
    assert want_errors >= 1 and want_ok >= 2, types
    chart = page.get_by_role("img", name=re.compile("^Requests per hour over the last 24 hours"))
    page.wait_for_function(  # the Refresh above reloads the chart and the table independently
        "([ok, bad]) => { const c = [...document.querySelectorAll('.chart .col')];"
        " return c.length === 24 && c.reduce((n, x) => n + +x.dataset.successful, 0) === ok"
        " && c.reduce((n, x) => n + +x.dataset.errors, 0) === bad; }", arg=[want_ok, want_errors])
    label = chart.get_attribute("aria-label") or ""
    assert f"{want_ok} successful events, {want_errors} error{'' if want_errors == 1 else 's'}; errors at " in label, label
    bars = page.evaluate(
        "() => [...document.querySelectorAll('.chart .col')].map((c) => ({ hour: c.dataset.hour, ok: +c.dataset.successful,"
        " err: +c.dataset.errors, label: c.querySelector('.lbl').textContent, track: c.querySelector('.stack').clientHeight,"
        " okH: c.querySelector('.bar-ok').getBoundingClientRect().height,"
        " errH: c.querySelector('.bar-err').getBoundingClientRect().height }))")
    most = max(b["ok"] + b["err"] for b in bars)
    for b in bars:
        assert abs(b["okH"] - b["track"] * b["ok"] / most) < 1.5 and abs(b["errH"] - b["track"] * b["err"] / most) < 1.5, b
    assert all((b["okH"] > 0) == (b["ok"] > 0) and (b["errH"] > 0) == (b["err"] > 0) for b in bars), bars
    assert [b["label"] for b in bars] == [b["hour"][11:13] for b in bars]  # every column labelled with its UTC hour
    legend = page.locator(".chart .legend")
    assert legend.inner_text().split() == ["Successful", "Errors", "(scim_error)"]


def test_api_key_is_not_shown_again_after_reload(page_for: Callable[..., Any], live: Gw, screens: Path) -> None:
    tenant = live.tenant("Reload Co")
    page = page_for()
    enter(page, live.link(tenant["id"]))
    key = create_key(page, "Okta SCIM")
    page.reload()
    page.get_by_role("cell", name="Okta SCIM", exact=True).wait_for()
    html = page.content()
    assert key not in html and key[len("scimgw_"):] not in html
    assert page.get_by_label("API key", exact=True).count() == 0
    status, keys = live.api("GET", f"/tenants/{tenant['id']}/api-keys")
    prefix = keys["api_keys"][0]["prefix"]
    assert page.get_by_role("cell", name=f"{prefix}…").is_visible()
    shot(page, screens, "06-api-keys-after-reload")
    # nor does the browser keep it: the key's response was not cacheable and history holds no value
    page.go_back()
    assert key not in page.content()


def test_revoking_a_key_in_the_portal_refuses_its_next_scim_call(page_for: Callable[..., Any], live: Gw) -> None:
    tenant = live.tenant("Revoke Co", scim_enabled=True)
    page = page_for()
    enter(page, live.link(tenant["id"]))
    key = create_key(page, "Okta SCIM")
    page.get_by_role("button", name="Done").click()
    assert scim("GET", tenant["scim_url"] + "/Users", key)[0] == 200
    page.get_by_role("button", name="Revoke Okta SCIM").click()
    page.get_by_role("button", name="Revoke key").click()
    page.get_by_text("Revoked “Okta SCIM”").wait_for()
    page.get_by_role("row").filter(has_text="Okta SCIM").get_by_text(re.compile("^Revoked ")).wait_for()
    assert page.get_by_role("button", name="Revoke Okta SCIM").count() == 0
    status, body = scim("GET", tenant["scim_url"] + "/Users", key)
    assert status == 401


def test_role_mapping_screen_changes_a_users_roles(page_for: Callable[..., Any], live: Gw, screens: Path) -> None:
    tenant = live.tenant("Roles Co", scim_enabled=True, idp="okta")
    key = live.key(tenant["id"])
    base = tenant["scim_url"]
    status, bob = scim("POST", base + "/Users", key, new_user("bob@roles.example"))
    assert status == 201
    status, _ = scim("POST", base + "/Groups", key, {"schemas": [GROUP_SCHEMA], "displayName": "Okta Admins",
                                                      "members": [{"value": bob["id"]}]})
    assert status == 201
    page = page_for()
    enter(page, live.link(tenant["id"]))
    open_identity(page, "Role mapping")
    page.get_by_role("radio", name="From IdP groups").check()
    page.get_by_role("button", name="Add group").click()
    page.get_by_role("textbox", name="IdP group name", exact=True).last.fill("Okta Admins")
    page.get_by_role("textbox", name="Roles (comma-separated)", exact=True).last.fill("admin, billing")
    assert page.get_by_role("textbox", name="Default roles (comma-separated)", exact=True).input_value() == ""
    shot(page, screens, "07-identity-role-mapping-groups")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved. 1 user's roles were recomputed.").wait_for()
    shot(page, screens, "07b-identity-role-mapping-saved")
    status, users = live.api("GET", f"/tenants/{tenant['id']}/users")
    assert users["users"][0]["roles"] == ["admin", "billing"]

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Users").click()
    row = page.get_by_role("row").filter(has_text="bob@roles.example")
    assert "admin, billing" in row.inner_text() and "SCIM" in row.inner_text()
    assert row.get_by_role("button", name=re.compile("Edit roles")).count() == 0  # roles come from the IdP here

    # From IdP attribute, then Portal-managed: roles become editable on the Users page
    open_identity(page, "Role mapping")
    page.get_by_role("radio", name="From IdP attribute").check()
    assert page.get_by_role("textbox", name="Attribute name", exact=True).input_value() == "roles"
    shot(page, screens, "08-identity-role-mapping-attribute")
    page.get_by_role("radio", name="Portal-managed").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Roles are portal-managed").wait_for()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Users").click()
    page.get_by_role("button", name="Edit roles of bob@roles.example").click()
    page.get_by_label("Roles of bob@roles.example (comma-separated)").fill("viewer")
    page.get_by_role("row").filter(has_text="bob@roles.example").get_by_role("button", name="Save").click()
    page.get_by_text("Saved the roles of bob@roles.example.").wait_for()
    status, users = live.api("GET", f"/tenants/{tenant['id']}/users")
    assert users["users"][0]["roles"] == ["viewer"]
    for n in range(3):
        scim("POST", base + "/Users", key, new_user(f"carol{n}@roles.example"))
    page.get_by_role("searchbox", name="Search users").fill("CAROL1")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text("1 user match").wait_for()
    assert page.get_by_role("row").filter(has_text="carol1@roles.example").is_visible()
    page.get_by_role("searchbox", name="Search users").fill("")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text("4 users").wait_for()
    shot(page, screens, "09-users")


def shift_clock(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    real = datetime.now
    monkeypatch.setattr(portal_access, "_utc_now", lambda: real(timezone.utc) + delta)


def test_portal_link_reuse_and_expiry_in_the_browser(page_for: Callable[..., Any], live: Gw, screens: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = live.tenant("Links Co")
    link = live.link(tenant["id"])
    first = page_for()
    enter(first, link)
    second = page_for()  # another browser (its own cookies) opening the same link
    resp = second.goto(link)
    assert resp.status == 410
    second.get_by_role("heading", name="This portal link has already been used").wait_for()
    assert second.get_by_role("button", name="Open the portal").count() == 0
    shot(second, screens, "10-portal-link-used")
    assert second.context.cookies() == []
    # the session made by the first use still works
    first.reload()
    first.get_by_role("heading", name="API Keys", level=1).wait_for()

    late = live.link(tenant["id"], minutes=5)
    third = page_for()
    third.goto(late)  # the page is open; the admin waits too long before continuing
    shift_clock(monkeypatch, timedelta(minutes=6))
    third.get_by_role("button", name="Open the portal").click()
    third.get_by_role("heading", name="This portal link has expired").wait_for()
    assert third.context.cookies() == []
    resp = third.goto(late)
    assert resp.status == 410
    resp = third.goto(late + "x")
    assert resp.status == 404
    third.get_by_role("heading", name="This portal link is not valid").wait_for()


def test_cross_tenant_and_cross_site_requests_are_refused(page_for: Callable[..., Any], live: Gw, screens: Path) -> None:
    from browser_kit import LiveServer
    from aiohttp import web
    from gateway.testing import free_port

    mine = live.tenant("Mine Co")
    other = live.tenant("Other Co")
    page = page_for()
    enter(page, live.link(mine["id"]))
    # another tenant's pages: a readable refusal, none of its data
    page.goto(f"/portal/#/tenants/{other['id']}/api-keys")
    page.get_by_role("alert").filter(has_text=f"No tenant '{other['id']}'").wait_for()
    assert "Other Co" not in page.content()
    shot(page, screens, "11-other-tenant-refused")
    status = page.evaluate("""async (id) => (await fetch(`/api/v1/tenants/${id}/api-keys`)).status""", other["id"])
    assert status == 404
    status = page.evaluate("""async () => (await fetch('/api/v1/tenants')).status""")
    assert status == 403
    # a same-origin write still needs its Origin: the page's own fetch sends it and succeeds
    status = page.evaluate("""async (id) => (await fetch(`/api/v1/tenants/${id}/api-keys`, {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({name: 'from page'})})).status""", mine["id"])
    assert status == 201

    # a page on another site (localhost is not 127.0.0.1's site) tries to create keys with the admin's browser
    target = f"{live.url}/api/v1/tenants/{mine['id']}"
    evil = web.Application()

    async def attack(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=f"""<!doctype html><html><body>
<form id="f" method="post" action="{target}/api-keys" enctype="text/plain">
<input name='{{"name": "evil", "x": "' value='"}}'></form>
<script>
// a "simple" cross-site request (no preflight): the browser sends it, the page cannot read the answer
fetch("{target}/api-keys", {{method: "POST", credentials: "include", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{name: "evil fetch"}})}})
  .finally(() => document.getElementById("f").submit());
</script></body></html>""")

    evil.router.add_get("/", attack)
    port = free_port()
    evil_server = LiveServer(evil, port).start()
    try:
        page.goto(f"http://localhost:{port}/")
        page.wait_for_url(re.compile(r"/api-keys$"))
        assert "unauthorized" in page.content() or "cross_site" in page.content()
    finally:
        evil_server.stop()
    status, keys = live.api("GET", f"/tenants/{mine['id']}/api-keys")
    assert [k["name"] for k in keys["api_keys"]] == ["from page"]


def test_sign_out_ends_the_session(page_for: Callable[..., Any], live: Gw, screens: Path) -> None:
    tenant = live.tenant("Signout Co")
    page = page_for()
    enter(page, live.link(tenant["id"]))
    cookies = page.context.cookies()
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    shot(page, screens, "12-signed-out")
    page.goto("/portal/")
    page.get_by_role("heading", name="Sign in").wait_for()
    # the old cookie, replayed from outside the browser, is dead on the server
    raw = f"{cookies[0]['name']}={cookies[0]['value']}"
    status, body = call("GET", f"{live.url}/api/v1/tenants/{tenant['id']}", headers={"Cookie": raw})
    assert status == 401


def test_operator_signs_in_manages_tenants_and_makes_a_portal_link(page_for: Callable[..., Any], live: Gw, screens: Path) -> None:
    from browser_kit import ADMIN

    page = page_for()
    page.goto("/portal/")
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="not the admin token").wait_for()
    shot(page, screens, "13-operator-sign-in-refused")
    page.get_by_label("Admin token").fill(ADMIN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Tenants", level=1).wait_for()
    page.get_by_role("button", name="Create tenant").click()
    page.get_by_label("Name", exact=True).fill("   ")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").filter(has_text="Could not create the tenant").wait_for()
    assert "{" not in page.get_by_role("alert").inner_text()  # words, not a JSON dump
    page.get_by_label("Name", exact=True).fill("Globex")
    page.get_by_label("Identity provider").select_option("entra")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Created tenant Globex").wait_for()
    page.get_by_role("button", name="Make portal link for Globex").click()
    page.get_by_label("Valid for (minutes)").fill("15")
    page.get_by_role("button", name="Make link").click()
    link = page.get_by_role("textbox", name="Portal link", exact=True).input_value()
    assert "/portal/link?token=pl_" in link
    shot(page, screens, "14-operator-tenants")
    page.get_by_role("link", name="Open Globex").click()
    page.get_by_role("heading", name="API Keys", level=1).wait_for()
    open_identity(page, "SCIM")
    assert page.get_by_role("combobox", name="Identity provider").input_value() == "entra"
    assert page.get_by_role("region", name="Setup guide").get_by_role("textbox", name="Tenant URL", exact=True).is_visible()
    # the link made on the page opens Globex for its IT admin
    admin = page_for()
    enter(admin, link)
    assert "Globex" in admin.get_by_role("banner").inner_text()


@pytest.mark.parametrize("width", [360])
def test_portal_screens_fit_a_phone(page_for: Callable[..., Any], live: Gw, screens: Path, width: int) -> None:
    tenant = live.tenant("Narrow Co", scim_enabled=True)
    key = live.key(tenant["id"], "Okta SCIM")
    scim("POST", tenant["scim_url"] + "/Users", key, new_user("dana.long-name@narrow.example"))
    scim("POST", tenant["scim_url"] + "/Users", key, new_user("dana.long-name@narrow.example"))
    page = page_for(width=width, height=740)
    page.goto("/portal/login")
    shot(page, screens, f"15-sign-in-{width}px")
    enter(page, live.link(tenant["id"]))
    create_key(page, "Entra SCIM")
    for name in ("16-api-keys", "17-identity-scim", "18-identity-activity", "19-users"):
        if name == "17-identity-scim":
            open_identity(page, "SCIM")
        elif name == "18-identity-activity":
            open_identity(page, "Activity")
            page.get_by_role("row").filter(has_text="scim_error").first.wait_for()
            page.get_by_role("img", name=re.compile("1 error; errors at")).wait_for()
        elif name == "19-users":
            page.get_by_role("navigation", name="Settings").get_by_role("link", name="Users").click()
            # the Activity table (two rows naming dana) may still be on screen until the Users page is
            page.wait_for_url(re.compile(r"/users$"))
            page.get_by_role("row").filter(has_text="dana").filter(has_not_text="scim_").wait_for()
        # nothing wider than the screen: every control is reachable without sideways scrolling
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, (name, overflow)
        shot(page, screens, f"{name}-{width}px")
