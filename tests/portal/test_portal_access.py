"""Portal access over real HTTP on every backend: links, sessions, scoping, same-origin writes, sign-out."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.http.appkeys import gateway_key
from gateway.identity import portal_access
from portal_kit import PUBLIC, TOKEN, Http, link_token, session_cookie, set_cookie_attributes

EVIL = "https://evil.example"


def shift_clock(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    """Move the portal's clock (links and sessions only) forward by ``delta``."""
    real = datetime.now

    monkeypatch.setattr(portal_access, "_utc_now", lambda: real(timezone.utc) + delta)


# links --------------------------------------------------------------------------------------------
async def test_portal_link_api_default_five_minutes_bounds_and_unknown_tenant(http: Http) -> None:
    t = await http.tenant("Acme")
    status, out = await http.api("POST", f"/tenants/{t['id']}/portal-links", token=TOKEN)
    assert status == 201 and set(out) == {"url", "expires_at"}
    assert out["url"].startswith(PUBLIC + "/portal/link?token=pl_")
    left = datetime.strptime(out["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)
    assert timedelta(minutes=4) < left <= timedelta(minutes=5)
    status, out = await http.api("POST", f"/tenants/{t['id']}/portal-links", {"minutes": 60}, token=TOKEN)
    assert status == 201
    for bad in ({"minutes": 0}, {"minutes": 61}, {"minutes": "5"}, {"minutes": 5, "tenant": "x"}):
        status, out = await http.api("POST", f"/tenants/{t['id']}/portal-links", bad, token=TOKEN)
        assert status == 400 and out["error"] == "validation_error", bad
    status, out = await http.api("POST", "/tenants/nope/portal-links", token=TOKEN)
    assert status == 404 and out["error"] == "not_found"
    status, out = await http.api("POST", f"/tenants/{t['id']}/portal-links")
    assert status == 401


async def test_portal_link_opens_one_session_then_refuses_reuse(http: Http) -> None:
    t = await http.tenant("Acme")
    url = await http.link(t["id"])
    status, page, _ = await http("GET", url.removeprefix(PUBLIC))
    assert status == 200 and "Acme" in page and "Open the portal" in page  # a GET does not spend the link
    status, cookie, resp = await http.redeem(url)
    assert status == 303 and resp.headers["Location"] == "/portal/" and cookie
    attrs = set_cookie_attributes(resp).lower()
    assert cookie.startswith("__Host-scimgw_portal=")  # https public URL: Secure, Path=/, host-only
    assert "httponly" in attrs and "samesite=strict" in attrs and "secure" in attrs and "path=/" in attrs
    status, body = await http.api("GET", f"/tenants/{t['id']}", cookie=cookie)
    assert status == 200 and body["id"] == t["id"]
    # the second use, by POST or by GET, is refused with a page that says so and no cookie
    status, again, resp = await http.redeem(url)
    assert status == 410 and again is None and "already been used" in await resp.text()
    status, page, _ = await http("GET", url.removeprefix(PUBLIC))
    assert status == 410 and "already been used" in page and "Open the portal" not in page


async def test_portal_link_expired_or_tampered_shows_a_page_never_a_session(http: Http, monkeypatch: pytest.MonkeyPatch) -> None:
    t = await http.tenant("Acme")
    url = await http.link(t["id"], minutes=5)
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    status, cookie, resp = await http.redeem(tampered)
    assert status == 404 and cookie is None and "not valid" in await resp.text()
    status, page, _ = await http("GET", "/portal/link?token=")
    assert status == 404 and "not valid" in page
    shift_clock(monkeypatch, timedelta(minutes=5, seconds=1))
    status, page, _ = await http("GET", url.removeprefix(PUBLIC))
    assert status == 410 and "expired" in page
    status, cookie, resp = await http.redeem(url)
    assert status == 410 and cookie is None and "expired" in await resp.text()


async def test_portal_link_redeemed_only_from_its_own_page(http: Http) -> None:
    t = await http.tenant("Acme")
    url = await http.link(t["id"])
    for origin in (EVIL, "null"):
        status, cookie, _ = await http.redeem(url, origin=origin)
        assert status == 403 and cookie is None
    status, cookie, _ = await http.redeem(url)  # refusing the cross-site POST did not spend the link
    assert status == 303 and cookie


async def test_portal_secrets_stored_only_as_hashes(http: Http) -> None:
    t = await http.tenant("Acme")
    url = await http.link(t["id"])
    _, cookie, _ = await http.redeem(url)
    assert cookie
    sid = cookie.split("=", 1)[1]
    gw = http.client.app[gateway_key]
    async with gw.store.read() as r:
        link = await r.get_portal_link(portal_access._hash(link_token(url)))
        session = await r.get_portal_session(portal_access._hash(sid))
        raw_link = await r.get_portal_link(link_token(url))
        raw_session = await r.get_portal_session(sid)
    assert link is not None and link.used and session is not None and session.tenant_id == t["id"]
    assert raw_link is None and raw_session is None


# scoping --------------------------------------------------------------------------------------------
async def test_tenant_session_reaches_only_its_tenant(http: Http) -> None:
    mine = await http.tenant("Mine")
    other = await http.tenant("Other")
    status, key = await http.api("POST", f"/tenants/{other['id']}/api-keys", {"name": "theirs"}, token=TOKEN)
    assert status == 201
    cookie = await http.tenant_session(mine["id"])
    o = {"cookie": cookie, "origin": PUBLIC}
    base = f"/tenants/{other['id']}"
    for method, path, body in (
        ("GET", base, None), ("PATCH", base, {"scim_enabled": True}), ("GET", base + "/api-keys", None),
        ("POST", base + "/api-keys", {"name": "x"}), ("DELETE", base + f"/api-keys/{key['id']}", None),
        ("GET", base + "/users", None), ("PUT", base + "/users/u1/roles", {"roles": ["admin"]}),
        ("GET", base + "/activity", None), ("GET", "/tenants/does-not-exist", None),
    ):
        status, out = await http.api(method, path, body, **o)
        assert status == 404 and set(out) == {"error", "detail"}, (method, path, out)
        assert "Other" not in json.dumps(out) and key["id"] not in json.dumps(out)
    for method, path, body in (
        ("GET", "/tenants", None), ("POST", "/tenants", {"name": "New"}),
        ("POST", f"/tenants/{mine['id']}/portal-links", None),
        ("POST", f"/tenants/{mine['id']}/sso/sign-in", {"user_name": "a@example.com"}),
        ("PATCH", f"/tenants/{mine['id']}", {"name": "Renamed"}),
        ("PATCH", f"/tenants/{mine['id']}", {"activity_retention": {"max_events": 10}}),
    ):
        status, out = await http.api(method, path, body, **o)
        assert status == 403 and out["error"] == "operator_only", (method, path, out)
    # nothing changed anywhere
    status, theirs = await http.api("GET", base, token=TOKEN)
    assert theirs["scim_enabled"] is False
    status, keys = await http.api("GET", base + "/api-keys", token=TOKEN)
    assert [k["revoked"] for k in keys["api_keys"]] == [None]
    status, listed = await http.api("GET", "/tenants", token=TOKEN)
    assert {x["name"] for x in listed["tenants"]} == {"Mine", "Other"}
    # and its own tenant is fully reachable
    status, out = await http.api("PATCH", f"/tenants/{mine['id']}", {"scim_enabled": True, "idp": "okta"}, **o)
    assert status == 200 and out["scim_enabled"] is True
    status, out = await http.api("POST", f"/tenants/{mine['id']}/api-keys", {"name": "Okta SCIM"}, **o)
    assert status == 201 and out["key"].startswith("scimgw_")


async def test_cross_site_cookie_writes_are_refused_and_change_nothing(http: Http) -> None:
    t = await http.tenant("Acme")
    cookie = await http.tenant_session(t["id"])
    path = f"/tenants/{t['id']}"
    for origin in (EVIL, "http://portal.example.test", "https://portal.example.test.evil.example", "null", None):
        for method, sub, body in (("PATCH", "", {"scim_enabled": True}), ("POST", "/api-keys", {"name": "x"})):
            status, out = await http.api(method, path + sub, body, cookie=cookie, origin=origin)
            assert status == 403 and out["error"] == "cross_site_request", (origin, method)
    status, out = await http.api("GET", path, cookie=cookie)  # reads need no Origin
    assert status == 200 and out["scim_enabled"] is False
    status, keys = await http.api("GET", path + "/api-keys", cookie=cookie)
    assert keys["api_keys"] == []
    # the bearer token is not a browser credential: no Origin needed
    status, out = await http.api("PATCH", path, {"scim_enabled": True}, token=TOKEN)
    assert status == 200


async def test_operator_login_and_session(http: Http) -> None:
    status, page, resp = await http("POST", "/portal/login", data={"token": TOKEN + "x"}, origin=PUBLIC)
    assert status == 401 and session_cookie(resp) is None and "not the admin token" in page and TOKEN not in page
    status, page, resp = await http("POST", "/portal/login", data={"token": TOKEN}, origin=EVIL)
    assert status == 403 and session_cookie(resp) is None
    cookie = await http.operator_session()
    await http.tenant("Acme")
    status, out = await http.api("GET", "/tenants", cookie=cookie)
    assert status == 200 and [x["name"] for x in out["tenants"]] == ["Acme"]
    status, out = await http.api("POST", "/tenants", {"name": "Beta"}, cookie=cookie, origin=PUBLIC)
    assert status == 201
    status, out = await http.api("POST", "/tenants", {"name": "Gamma"}, cookie=cookie, origin=EVIL)
    assert status == 403
    status, who, _ = await http("GET", "/portal/session", cookie=cookie)
    assert status == 200 and who["operator"] is True and who["tenant_id"] is None


async def test_sign_out_ends_the_session_server_side(http: Http) -> None:
    t = await http.tenant("Acme")
    cookie = await http.tenant_session(t["id"])
    status, _, resp = await http("POST", "/portal/logout", cookie=cookie, origin=EVIL)
    assert status == 403
    status, _, resp = await http("POST", "/portal/logout", cookie=cookie, origin=PUBLIC)
    assert status == 303 and resp.headers["Location"].startswith("/portal/login")
    assert "max-age=0" in set_cookie_attributes(resp).lower()
    # the old cookie value, replayed, is dead: the session is gone from the database
    status, out = await http.api("GET", f"/tenants/{t['id']}", cookie=cookie)
    assert status == 401 and "ended" in out["detail"]
    status, _, resp = await http("GET", "/portal/", cookie=cookie)
    assert status == 303 and resp.headers["Location"] == "/portal/login?expired=1"


async def test_sessions_end_at_idle_and_absolute_timeouts(http: Http, monkeypatch: pytest.MonkeyPatch) -> None:
    t = await http.tenant("Acme")
    cookie = await http.tenant_session(t["id"])
    path = f"/tenants/{t['id']}"
    # used every 20 minutes, the session outlives the 30-minute idle timeout ...
    for step in range(1, 5):
        shift_clock(monkeypatch, timedelta(minutes=20 * step))
        status, _ = await http.api("GET", path, cookie=cookie)
        assert status == 200, step
    # ... but not 31 idle minutes
    shift_clock(monkeypatch, timedelta(minutes=80 + 31))
    status, out = await http.api("GET", path, cookie=cookie)
    assert status == 401
    # the absolute timeout (12 hours) ends even a busy session
    monkeypatch.undo()
    cookie = await http.tenant_session(t["id"])
    for minutes in range(25, 12 * 60, 25):
        shift_clock(monkeypatch, timedelta(minutes=minutes))
        status, _ = await http.api("GET", path, cookie=cookie)
        assert status == 200, minutes
    shift_clock(monkeypatch, timedelta(hours=12, seconds=1))
    status, _ = await http.api("GET", path, cookie=cookie)
    assert status == 401


async def test_portal_pages_carry_security_headers(http: Http) -> None:
    t = await http.tenant("Acme")
    cookie = await http.tenant_session(t["id"])
    for path, c in (("/portal/login", None), ("/portal/", cookie), ("/portal/static/portal.js", None),
                    ("/portal/link?token=nope", None)):
        status, _, resp = await http("GET", path, cookie=c)
        assert status in (200, 404), path
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Referrer-Policy"] == "same-origin"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    status, _, resp = await http("GET", "/portal/")
    assert status == 303 and resp.headers["Location"] == "/portal/login"


def test_cli_portal_link_prints_the_api_object(tmp_path: Any) -> None:
    db = str(tmp_path / "cli.db")
    run = [sys.executable, "-m", "gateway.cli", "--database", db]
    env = {"SCIM_GATEWAY_PUBLIC_URL": "https://gw.example.test", "PATH": "/usr/bin:/bin"}
    t = json.loads(subprocess.run([*run, "tenants", "create", "Acme", "--json"], capture_output=True, text=True, check=True, env=env).stdout)
    out = subprocess.run([*run, "portal-link", t["id"], "--minutes", "15", "--json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    link = json.loads(out.stdout)
    assert set(link) == {"url", "expires_at"} and link["url"].startswith("https://gw.example.test/portal/link?token=pl_")
    out = subprocess.run([*run, "portal-link", t["id"], "--minutes", "61", "--json"], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and json.loads(out.stdout)["error"] == "validation_error"
    out = subprocess.run([*run, "portal-link", "nope"], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "nope" in out.stdout + out.stderr
    out = subprocess.run([*run, "portal-link", t["id"]], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "/portal/link?token=pl_" in out.stdout and "Single use" in out.stdout


def test_serve_demo_prints_a_working_portal_link(server: dict[str, str]) -> None:
    import urllib.error
    import urllib.parse
    import urllib.request

    link = server["portal"]
    parts = urllib.parse.urlsplit(link)
    origin = f"{parts.scheme}://{parts.netloc}"
    with urllib.request.urlopen(link, timeout=10) as resp:
        assert resp.status == 200 and "Open the portal" in resp.read().decode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    req = urllib.request.Request(f"{origin}/portal/link", data=urllib.parse.urlencode({"token": token}).encode(),
                                 headers={"Origin": origin}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(req, timeout=10)
    assert redirect.value.code == 303
    cookie = redirect.value.headers["Set-Cookie"].split(";", 1)[0]
    tenant_id = server["url"].rsplit("/", 1)[1]
    req = urllib.request.Request(f"{origin}/api/v1/tenants/{tenant_id}", headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["scim_enabled"] is True


async def test_prune_removes_spent_links_and_ended_sessions_only(http: Http, monkeypatch: pytest.MonkeyPatch) -> None:
    t = await http.tenant("Acme")
    gw = http.client.app[gateway_key]
    expired_link = link_token(await http.link(t["id"], minutes=1))
    live_link = link_token(await http.link(t["id"], minutes=60))
    idle_cookie = await http.tenant_session(t["id"])
    shift_clock(monkeypatch, timedelta(minutes=20))
    busy_cookie = await http.tenant_session(t["id"])
    shift_clock(monkeypatch, timedelta(minutes=31))  # idle_cookie: 31 minutes unused; busy_cookie: 11
    removed = await portal_access.prune(gw.store, idle=timedelta(minutes=30))
    # three links past their expiry (the 1-minute one and the two 5-minute ones the sessions spent) and the idle session
    assert removed == 3 + 1
    async with gw.store.read() as r:
        assert await r.get_portal_link(portal_access._hash(expired_link)) is None
        assert await r.get_portal_link(portal_access._hash(live_link)) is not None
        assert await r.get_portal_session(portal_access._hash(idle_cookie.split("=", 1)[1])) is None
        assert await r.get_portal_session(portal_access._hash(busy_cookie.split("=", 1)[1])) is not None
    status, _ = await http.api("GET", f"/tenants/{t['id']}", cookie=busy_cookie)
    assert status == 200


def test_portal_assets_are_local_with_no_inline_script_or_style() -> None:
    import re
    from importlib import resources

    folder = resources.files("gateway.http.portal").joinpath("static")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["index.html", "portal.css", "portal.js"]
    html = folder.joinpath("index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/portal/static/portal.js" defer>']
    assert "<style" not in html and " style=" not in html and not re.search(r"\son\w+=", html)
    for name in names:
        text = folder.joinpath(name).read_text()
        # nothing fetched from elsewhere: no absolute URLs, protocol-relative URLs or CSS imports
        assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", text), name
        assert "@import" not in text and "innerHTML" not in text.replace("never through innerHTML", ""), name
