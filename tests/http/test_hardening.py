"""Hardening at the edge, over a real HTTP server: rate limits, throttles, protocol limits, slow and huge bodies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from gateway.testing import GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, ScimClient, add_tenant, build_app

ClientFactory = Callable[[web.Application], Awaitable["TestClient[web.Request, web.Application]"]]
ADMIN = "adm_hardening_" + "q" * 40


async def _scim(aiohttp_client: ClientFactory, tmp_path: Path, **settings: Any) -> ScimClient:
    client = await aiohttp_client(build_app(tmp_path / "g.db", admin_token=ADMIN, **settings))
    tenant, key = await add_tenant(client.app, "Hardening")
    return ScimClient(client, tenant, key)


async def _raw(scim: ScimClient, data: bytes, *, read: bool = True, timeout: float = 10) -> bytes:
    """Send raw bytes to the test server; the response bytes (until the server closes)."""
    server = scim.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(data)
        await writer.drain()
        if not read:
            return b""
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def _scim_error(raw: bytes) -> tuple[int, dict[str, Any], str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body), head.decode("latin-1")


# -- rate limits -----------------------------------------------------------------------------------
async def test_rate_limit_per_key_answers_429_with_retry_after(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, rate_limit_per_second=0.5, rate_limit_burst=5)
    other = await scim.other_tenant("Neighbour")
    statuses = [(await scim.get("/Users"))[0] for _ in range(5)]
    assert statuses == [200] * 5
    status, err, resp = await scim.get("/Users")
    assert status == 429 and err["status"] == "429" and "rate_limit_per_second" in err["detail"]
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await other.get("/Users"))[0] == 200  # another key (and tenant) has its own bucket


async def test_rate_limit_per_tenant_override(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, rate_limit_per_second=1000, rate_limit_burst=1000)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    resp = await scim.client.patch(f"/api/v1/tenants/{scim.tenant.id}", json={"rate_limit": {"per_second": 0.5, "burst": 2}},
                                   headers=admin)
    assert resp.status == 200 and (await resp.json())["rate_limit"] == {"per_second": 0.5, "burst": 2}
    assert [(await scim.get("/Users"))[0] for _ in range(3)] == [200, 200, 429]
    resp = await scim.client.patch(f"/api/v1/tenants/{scim.tenant.id}", json={"rate_limit": {"per_second": 0}}, headers=admin)
    assert resp.status == 200
    assert {(await scim.get("/Users"))[0] for _ in range(5)} == {200}  # 0: no limit for this tenant


async def test_rate_limit_off_with_zero(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, rate_limit_per_second=0, rate_limit_burst=1)
    assert {(await scim.get("/Users"))[0] for _ in range(5)} == {200}


async def test_failed_auth_throttled_per_address(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, auth_failure_limit=5, trusted_proxies="127.0.0.1, ::1")
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    statuses = [(await scim.get("/Users", key="scimgw_wrong_key_guess", headers=attacker))[0] for _ in range(5)]
    assert statuses == [401] * 5
    status, err, resp = await scim.get("/Users", key="scimgw_wrong_key_guess", headers=attacker)
    assert status == 429 and "auth_failure_limit" in err["detail"] and int(resp.headers["Retry-After"]) >= 1
    # during the cool-down even the right key is refused from that address: guessing gets no answer
    assert (await scim.get("/Users", headers=attacker))[0] == 429
    # the IdP behind another address is not blocked by someone else's failures
    assert (await scim.get("/Users", headers={"X-Forwarded-For": "198.51.100.20"}))[0] == 200


async def test_forwarded_for_ignored_from_untrusted_peers(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, auth_failure_limit=3)  # no trusted proxies
    for i in range(3):  # a fresh spoofed address each time does not escape the throttle
        assert (await scim.get("/Users", key="nope", headers={"X-Forwarded-For": f"192.0.2.{i}"}))[0] == 401
    assert (await scim.get("/Users", key="nope", headers={"X-Forwarded-For": "192.0.2.99"}))[0] == 429


async def test_admin_api_failed_auth_throttled(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, auth_failure_limit=3)
    c = scim.client
    for _ in range(3):
        resp = await c.get("/api/v1/tenants", headers={"Authorization": "Bearer wrong"})
        assert resp.status == 401
    resp = await c.get("/api/v1/tenants", headers={"Authorization": f"Bearer {ADMIN}"})
    body = await resp.json()
    assert resp.status == 429 and body["error"] == "too_many_requests" and int(resp.headers["Retry-After"]) >= 1


# -- protocol limits -------------------------------------------------------------------------------
async def test_long_request_line_is_414_with_a_scim_body(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path)
    flt = "(" * 5000 + 'userName eq "a"' + ")" * 5000  # the 5,000-deep filter, over 8 KiB
    raw = await _raw(scim, f"GET {scim.base}/Users?filter={quote(flt)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, body, head = _scim_error(raw)
    assert status == 414 and body["status"] == "414" and "max_request_line_bytes" in body["detail"]
    assert "application/scim+json" in head and "userName" not in body["detail"]


async def test_long_header_is_431_with_a_scim_body(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, max_header_bytes=1024)
    raw = await _raw(scim, f"GET {scim.base}/Users HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 4000}\r\n\r\n".encode())
    status, body, _ = _scim_error(raw)
    assert status == 431 and "max_header_bytes" in body["detail"]


async def test_declared_oversized_body_is_413_before_reading(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, max_body_bytes=1000)
    head = (f"POST {scim.base}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {scim.key}\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: 50000000\r\n\r\n")
    raw = await _raw(scim, head.encode() + b"{")  # the 50 MB never come: the answer must not wait for them
    status, body, _ = _scim_error(raw)
    assert status == 413 and "max_body_bytes" in body["detail"]


async def test_streamed_oversized_body_is_413(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, max_body_bytes=1000)

    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 100

    resp = await scim.client.post(f"{scim.base}/Users", data=chunks(),
                                  headers={"Authorization": f"Bearer {scim.key}", "Content-Type": "application/scim+json"})
    assert resp.status == 413 and (await resp.json())["status"] == "413"


async def test_slow_body_is_cut_off_and_logged_as_a_client_error(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, body_read_timeout_seconds=0.5)
    head = (f"POST {scim.base}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {scim.key}\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{")
    with capture_logs() as logs:
        raw = await _raw(scim, head.encode(), timeout=10)
    status, body, _ = _scim_error(raw)
    assert status == 408 and "body_read_timeout_seconds" in body["detail"]
    lines = [e for e in logs if e["event"] == "request"]
    assert lines and lines[-1]["status"] == 408
    assert not [e for e in logs if e["event"] == "unhandled_error"]


async def test_client_disconnecting_mid_body_is_not_a_500(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path)
    head = (f"POST {scim.base}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {scim.key}\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{")
    with capture_logs() as logs:
        await _raw(scim, head.encode(), read=False)
        for _ in range(50):
            await asyncio.sleep(0.05)
            if any(e["event"] == "request" for e in logs):
                break
    lines = [e for e in logs if e["event"] == "request"]
    assert lines and 400 <= lines[-1]["status"] < 500
    assert not [e for e in logs if e["event"] == "unhandled_error"]


async def test_connection_cap_answers_503_with_a_scim_body(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, max_connections=2)
    server = scim.client.server
    idle = [await asyncio.open_connection(server.host, server.port) for _ in range(2)]
    await asyncio.sleep(0.05)
    try:
        raw = await _raw(scim, f"GET {scim.base}/Users HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, body, _ = _scim_error(raw)
        assert status == 503 and "max_connections" in body["detail"]
    finally:
        for _, w in idle:
            w.close()
    await asyncio.sleep(0.05)
    assert (await scim.get("/Users"))[0] == 200  # capacity is back once they close


# -- bounded work ----------------------------------------------------------------------------------
async def test_element_cap_names_its_setting(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, max_elements_per_request=10)
    emails = [{"value": f"e{i}@example.com"} for i in range(11)]
    status, err, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "many", "emails": emails})
    assert status == 400 and err["scimType"] == "invalidValue" and "max_elements_per_request" in err["detail"]
    g = await scim.create_group("G")
    status, err, _ = await scim.patch(f"/Groups/{g['id']}", [{"op": "add", "path": "members",
                                                               "value": [{"value": f"m{i}"} for i in range(11)]}])
    assert status == 400 and "max_elements_per_request" in err["detail"]


async def test_patch_operation_cap_names_its_setting(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, max_patch_operations=3)
    doc = await scim.create_user("ops@example.com")
    ops = [{"op": "replace", "path": "title", "value": str(i)} for i in range(4)]
    status, err, _ = await scim.patch(f"/Users/{doc['id']}", ops)
    assert status == 400 and "max_patch_operations" in err["detail"]
    assert (await scim.patch(f"/Users/{doc['id']}", ops[:3]))[0] == 200


async def test_big_member_add_is_answered_and_complete(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path)
    store = scim.gateway.store
    from gateway.store.base import ResourceRow

    ids = [f"u-{i:05d}" for i in range(3000)]
    async with store.write() as tx:
        for i in ids:
            await tx.insert_user(scim.tenant.id, ResourceRow(id=i, data={"userName": i, "schemas": [USER_SCHEMA]},
                                                             version=1, created="2026-01-01T00:00:00Z",
                                                             last_modified="2026-01-01T00:00:00Z"))
    g = await scim.create_group("Big")
    status, _, _ = await scim.patch(f"/Groups/{g['id']}", [{"op": "add", "path": "members",
                                                           "value": [{"value": i} for i in ids + ids[:10]]}])
    assert status == 204
    status, doc, _ = await scim.get(f"/Groups/{g['id']}")
    assert sorted(m["value"] for m in doc["members"]) == ids


# -- protocol details --------------------------------------------------------------------------------
@pytest.mark.parametrize("count", ["0", "-5"])
async def test_count_zero_still_carries_start_index_and_items_per_page(scim: ScimClient, count: str) -> None:
    await scim.create_user("one@example.com")
    status, body, _ = await scim.get("/Users", params={"count": count, "startIndex": "1"})
    assert status == 200 and body["totalResults"] == 1 and body["Resources"] == []
    assert body["itemsPerPage"] == 0 and body["startIndex"] == 1  # RFC 7644 §3.4.2


async def test_non_utf8_charset_is_decoded(scim: ScimClient) -> None:
    body = json.dumps({"schemas": [USER_SCHEMA], "userName": "jos\u00e9@example.com", "title": "Se\u00f1or"},
                      ensure_ascii=False).encode("latin-1")
    status, doc, _ = await scim.request("POST", "/Users", raw=body,
                                        headers={"Content-Type": "application/scim+json; charset=latin-1"})
    assert status == 201 and doc["userName"] == "jos\u00e9@example.com" and doc["title"] == "Se\u00f1or"


async def test_unknown_charset_is_415(scim: ScimClient) -> None:
    status, err, _ = await scim.request("POST", "/Users", raw=b"{}",
                                        headers={"Content-Type": "application/scim+json; charset=klingon-8"})
    assert status == 415 and err["status"] == "415"


async def test_deep_json_refused_on_admin_api(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    auth = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    for method, path in (("POST", "/api/v1/tenants"), ("PATCH", f"/api/v1/tenants/{scim.tenant.id}")):
        resp = await scim.client.request(method, path, data=deep, headers=auth)
        assert resp.status == 400, (method, await resp.text())
        assert (await resp.json())["error"] == "validation_error"
    nested = '{"name": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    resp = await scim.client.post("/api/v1/tenants", data=nested, headers=auth)
    assert resp.status == 400 and "max_json_depth" in (await resp.json())["detail"]


async def test_nul_in_admin_body_is_400(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path)
    resp = await scim.client.post("/api/v1/tenants", data='{"name": "a\\u0000b"}',
                                  headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    assert resp.status == 400


async def test_member_values_with_surrogates_are_400(scim: ScimClient) -> None:
    g = await scim.create_group("G")
    status, err, _ = await scim.request("PATCH", f"/Groups/{g['id']}", raw=json.dumps(
        {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": 'members[value eq "\\ud800"]'}]}))
    assert status == 400 and err["scimType"] == "invalidPath"
    status, err, _ = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "x\u0000"})
    assert status == 400 and err["scimType"] == "invalidValue"


async def test_portal_login_failures_throttled_per_address(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    public = "https://scim.example.test"
    scim = await _scim(aiohttp_client, tmp_path, auth_failure_limit=3)
    c = scim.client
    origin = {"Origin": public}
    for _ in range(3):
        resp = await c.post("/portal/login", data={"token": "wrong"}, headers=origin, allow_redirects=False)
        assert resp.status == 401
    resp = await c.post("/portal/login", data={"token": ADMIN}, headers=origin, allow_redirects=False)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    # the admin API shares the address's cool-down: a token guessed in the portal is not retried there
    resp = await c.get("/api/v1/tenants", headers={"Authorization": f"Bearer {ADMIN}"})
    assert resp.status == 429


async def test_successful_admin_calls_are_not_counted(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scim = await _scim(aiohttp_client, tmp_path, auth_failure_limit=2)
    for _ in range(10):
        resp = await scim.client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {ADMIN}"})
        assert resp.status == 200
    assert {(await scim.get("/Users"))[0] for _ in range(10)} == {200}


async def test_key_in_url_path_never_reaches_the_request_log(scim: ScimClient) -> None:
    with capture_logs() as logs:
        status, _, _ = await scim.get(f"/Users/{scim.key}")
        await scim.client.get(f"/nowhere/{scim.key}")
    assert status == 404
    lines = [e for e in logs if e["event"] == "request"]
    assert len(lines) == 2 and all(scim.key not in e["path"] and "[redacted]" in e["path"] for e in lines)
