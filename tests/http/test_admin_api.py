"""The admin API: authentication, validation, tenants, API keys, users, and tenant isolation."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.testing import USER_SCHEMA, ScimClient, build_app

TOKEN = "adm_http_test_" + "z" * 40


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def __call__(self, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
                       raw: str | None = None, params: dict[str, str] | None = None,
                       headers: dict[str, str] | None = None) -> tuple[int, Any]:
        h = {"Authorization": f"Bearer {token}"} if token is not None else {}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        resp = await self.client.request(method, "/api/v1" + path, data=data, headers=h, params=params)
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


@pytest.fixture
def gateway_app(gateway_database: str, gateway_plugins: list[Any]) -> web.Application:
    return build_app(gateway_database, plugins=gateway_plugins, admin_token=TOKEN, public_url="https://api.agc-dev.com")


@pytest.fixture
async def api(scim: ScimClient) -> Api:
    return Api(scim.client)


async def test_admin_without_configured_token_refuses_everyone(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], tmp_path: Any
) -> None:
    client = await aiohttp_client(build_app(tmp_path / "x.db"))
    api = Api(client)
    for token in (None, "", "anything", TOKEN):
        status, body = await api("GET", "/tenants", token=token)
        assert status == 401 and body["error"] == "unauthorized" and "SCIM_GATEWAY_ADMIN_TOKEN" in body["detail"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"])
async def test_admin_wrong_credentials_are_401(api: Api, header: str | None) -> None:
    status, body = await api("GET", "/tenants", token=None, headers={"Authorization": header} if header else None)
    assert status == 401 and set(body) == {"error", "detail"} and TOKEN not in body["detail"]


async def test_admin_tenant_create_defaults_and_read_only_scim_url(api: Api) -> None:
    status, t = await api("POST", "/tenants", {"name": "Agility UAT"})
    assert status == 201
    assert t["scim_enabled"] is False and t["log_successful_events"] is False and t["idp"] == "auto"
    assert t["scim_url"] == f"https://api.agc-dev.com/scim/v2/{t['id']}"
    assert t["role_mapping"]["source"] == "portal"
    status, got = await api("GET", f"/tenants/{t['id']}")
    assert status == 200 and got == t
    status, listed = await api("GET", "/tenants")
    assert t["id"] in [x["id"] for x in listed["tenants"]]
    status, body = await api("PATCH", f"/tenants/{t['id']}", {"scim_url": "https://evil.example/scim"})
    assert status == 400 and body["error"] == "read_only_field"
    status, patched = await api("PATCH", f"/tenants/{t['id']}", {"name": "Agility", "idp": "okta",
                                                                 "scim_enabled": True, "log_successful_events": True})
    assert status == 200 and (patched["name"], patched["idp"], patched["scim_enabled"]) == ("Agility", "okta", True)
    assert patched["log_successful_events"] is True and patched["scim_url"] == t["scim_url"]
    status, body = await api("GET", "/tenants/no-such-tenant")
    assert status == 404 and body["error"] == "not_found"


@pytest.mark.parametrize("path,method,body", [
    ("/tenants", "POST", {"name": "X", "colour": "red"}),
    ("/tenants", "POST", {"name": ""}),
    ("/tenants", "POST", {"name": "X", "scim_enabled": "yes"}),
    ("/tenants", "POST", ["not", "an", "object"]),
    ("/tenants/{tid}", "PATCH", {"scim_enabled": True, "extra": 1}),
    ("/tenants/{tid}", "PATCH", {"activity_retention": {"max_events": 0}}),
    ("/tenants/{tid}/api-keys", "POST", {"name": "k", "scopes": ["all"]}),
    ("/tenants/{tid}/api-keys", "POST", {}),
    ("/tenants/{tid}/users/u1/roles", "PUT", {"roles": "admin"}),
    ("/tenants/{tid}/users/u1/roles", "PUT", {"roles": ["admin"], "user": "u1"}),
])
async def test_admin_validation_errors_are_400(scim: ScimClient, api: Api, path: str, method: str, body: Any) -> None:
    status, err = await api(method, path.format(tid=scim.tenant.id), body)
    assert status == 400 and err["error"] == "validation_error" and err["detail"], err


async def test_admin_idp_must_be_an_installed_plugin(api: Api) -> None:
    status, err = await api("POST", "/tenants", {"name": "X", "idp": "ping"})
    assert status == 400 and err["error"] == "invalid_idp" and "generic" in err["detail"]
    status, t = await api("POST", "/tenants", {"name": "X", "idp": "generic"})
    assert status == 201 and t["idp"] == "generic"
    status, err = await api("PATCH", f"/tenants/{t['id']}", {"idp": "ping"})
    assert status == 400 and err["error"] == "invalid_idp"


async def test_admin_malformed_json_and_empty_body(api: Api) -> None:
    status, err = await api("POST", "/tenants", raw="{nope")
    assert status == 400 and err["error"] == "validation_error"
    status, err = await api("POST", "/tenants", raw="")
    assert status == 400 and err["error"] == "invalid_json"


async def test_admin_api_keys_shown_once_listed_without_secret_and_revoked(scim: ScimClient, api: Api) -> None:
    tid = scim.tenant.id
    status, k = await api("POST", f"/tenants/{tid}/api-keys", {"name": "Okta SCIM"})
    assert status == 201 and set(k) == {"id", "name", "key", "created"} and k["key"].startswith("scimgw_")
    status, listed = await api("GET", f"/tenants/{tid}/api-keys")
    assert status == 200 and k["id"] in [x["id"] for x in listed["api_keys"]]
    dumped = json.dumps(listed)
    assert k["key"] not in dumped and "hash" not in dumped and all("key" not in x for x in listed["api_keys"])
    status, _, _ = await scim.get("/Users", key=k["key"])
    assert status == 200
    status, body = await api("DELETE", f"/tenants/{tid}/api-keys/{k['id']}")
    assert status == 204 and body is None
    status, _, _ = await scim.get("/Users", key=k["key"])
    assert status == 401
    status, body = await api("DELETE", f"/tenants/{tid}/api-keys/{k['id']}")
    assert status == 404 and body["error"] == "not_found"


async def test_admin_users_paged_with_roles_and_origin(scim: ScimClient, api: Api) -> None:
    tid = scim.tenant.id
    for i in range(5):
        await scim.create_user(f"u{i}@example.com", emails=[{"value": f"U{i}@Example.com", "primary": True}],
                               active=i != 2)
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = await api("GET", f"/tenants/{tid}/users", params=params)
        assert status == 200 and page["total"] == 5
        seen.extend(page["users"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [u["userName"] for u in seen] == [f"u{i}@example.com" for i in range(5)]
    u2 = seen[2]
    assert u2["email"] == "U2@Example.com" and u2["active"] is False and u2["roles"] == []
    assert u2["provisioned_by"] == "scim" and {"id", "userName", "email", "active", "roles", "provisioned_by"} <= set(u2)


async def test_admin_tenant_isolation(scim: ScimClient, api: Api) -> None:
    a = scim
    b = await scim.other_tenant("Tenant B")
    ua = await a.create_user("shared@example.com")
    ub = await b.create_user("shared@example.com")
    status, keys_b = await api("GET", f"/tenants/{b.tenant.id}/api-keys")
    key_b = keys_b["api_keys"][0]["id"]
    # Another tenant's ids through this tenant's paths are simply not there.
    status, body = await api("PUT", f"/tenants/{a.tenant.id}/users/{ub['id']}/roles", {"roles": ["x"]})
    assert status == 404
    status, body = await api("DELETE", f"/tenants/{a.tenant.id}/api-keys/{key_b}")
    assert status == 404
    status, _, _ = await b.get("/Users")
    assert status == 200  # B's key still works
    status, users_a = await api("GET", f"/tenants/{a.tenant.id}/users")
    assert [u["id"] for u in users_a["users"]] == [ua["id"]]
    status, events_a = await api("GET", f"/tenants/{a.tenant.id}/activity")
    assert {e["resource_id"] for e in events_a["events"]} == {ua["id"]}
    status, _ = await api("PUT", f"/tenants/{a.tenant.id}/users/{ua['id']}/roles", {"roles": ["owner"]})
    status, users_b = await api("GET", f"/tenants/{b.tenant.id}/users")
    assert users_b["users"][0]["roles"] == []
    # A's SCIM key cannot reach B's SCIM endpoint.
    status, _, _ = await b.get("/Users", key=a.key)
    assert status == 401


async def test_admin_scim_toggle_off_is_403_and_keeps_data(scim: ScimClient, api: Api) -> None:
    status, t = await api("POST", "/tenants", {"name": "Fresh"})
    status, k = await api("POST", f"/tenants/{t['id']}/api-keys", {"name": "idp"})
    fresh = ScimClient(scim.client, scim.tenant, k["key"])
    fresh.base = f"/scim/v2/{t['id']}"
    status, err, _ = await fresh.post("/Users", {"schemas": [USER_SCHEMA], "userName": "a@example.com"})
    assert status == 403 and "scim_enabled" in err["detail"]  # new tenants start with SCIM off
    await api("PATCH", f"/tenants/{t['id']}", {"scim_enabled": True})
    status, _, _ = await fresh.post("/Users", {"schemas": [USER_SCHEMA], "userName": "a@example.com"})
    assert status == 201
    await api("PATCH", f"/tenants/{t['id']}", {"scim_enabled": False})
    status, err, _ = await fresh.get("/Users")
    assert status == 403
    status, users = await api("GET", f"/tenants/{t['id']}/users")
    assert [u["userName"] for u in users["users"]] == ["a@example.com"]
