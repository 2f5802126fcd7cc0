"""The scim-gateway command, and a plain RFC 7644 client's whole sequence against `scim-gateway serve`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.cli import main

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def run_cli(capsys: pytest.CaptureFixture[str], db: Path, *args: str) -> Any:
    assert main(["--database", str(db), *args]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in args else out


def test_cli_tenant_key_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_GATEWAY_PUBLIC_URL", "https://api.example.net")
    db = tmp_path / "cli.db"
    t = run_cli(capsys, db, "tenants", "create", "Acme Corp", "--idp", "okta", "--json")
    assert t["scim_url"] == f"https://api.example.net/scim/v2/{t['id']}" and t["idp"] == "okta"
    assert t["scim_enabled"] is False  # SCIM starts off, as in the product
    assert t["id"].startswith("acme-corp-")
    listed = run_cli(capsys, db, "tenants", "list", "--json")
    assert [x["id"] for x in listed] == [t["id"]]
    k = run_cli(capsys, db, "keys", "create", t["id"], "--name", "Okta SCIM", "--json")
    assert set(k) == {"id", "name", "key", "created"} and k["key"].startswith("scimgw_")
    keys = run_cli(capsys, db, "keys", "list", t["id"], "--json")
    assert keys[0]["id"] == k["id"] and "key" not in keys[0] and k["key"] not in json.dumps(keys)
    run_cli(capsys, db, "scim", "enable", t["id"])
    assert run_cli(capsys, db, "tenants", "list", "--json")[0]["scim_enabled"] is True
    run_cli(capsys, db, "keys", "revoke", t["id"], k["id"])
    assert run_cli(capsys, db, "keys", "list", t["id"], "--json")[0]["revoked"]
    assert main(["--database", str(db), "keys", "revoke", t["id"], k["id"]]) == 1
    assert "SQLite" not in capsys.readouterr().err
    run_cli(capsys, db, "migrate")


def test_cli_keys_create_for_unknown_tenant_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database", str(tmp_path / "x.db"), "keys", "create", "nope", "--name", "n"]) == 1
    assert "no tenant" in capsys.readouterr().err


@pytest.mark.slow
async def test_serve_plain_rfc_client_sequence(server: dict[str, str]) -> None:
    base = server["url"]
    headers = {"Authorization": f"Bearer {server['key']}", "Content-Type": "application/scim+json"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async def call(method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
            async with http.request(method, base + path, json=body, params=params or None) as r:
                text = await r.text()
                return r.status, (json.loads(text) if text else None)

        assert (await call("GET", "/ServiceProviderConfig"))[0] == 200
        assert (await call("GET", "/ResourceTypes"))[0] == 200
        assert (await call("GET", "/Schemas"))[0] == 200
        status, u = await call("POST", "/Users", {"schemas": [USER], "userName": "bjensen@example.com",
                                                  "name": {"givenName": "Barbara", "familyName": "Jensen"}})
        assert status == 201 and u["meta"]["location"] == f"{base}/Users/{u['id']}"
        status, got = await call("GET", f"/Users/{u['id']}")
        assert status == 200 and got["userName"] == "bjensen@example.com"
        for i in range(3):
            await call("POST", "/Users", {"schemas": [USER], "userName": f"extra{i}@example.com"})
        status, page = await call("GET", "/Users", filter='userName sw "extra"', startIndex="2", count="1")
        assert page["totalResults"] == 3 and page["itemsPerPage"] == 1 and page["startIndex"] == 2
        status, got = await call("PUT", f"/Users/{u['id']}", {"schemas": [USER], "userName": "bjensen@example.com",
                                                            "title": "Tour Guide"})
        assert status == 200 and got["title"] == "Tour Guide"
        status, got = await call("PATCH", f"/Users/{u['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": False}]})
        assert status == 200 and got["active"] is False
        status, g = await call("POST", "/Groups", {"schemas": [GROUP], "displayName": "Tour Guides", "members": []})
        assert status == 201
        status, _ = await call("PATCH", f"/Groups/{g['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": u["id"]}]}]})
        assert status == 204
        status, got = await call("GET", f"/Users/{u['id']}")
        assert got["groups"][0]["value"] == g["id"]
        assert (await call("DELETE", f"/Users/{u['id']}"))[0] == 204
        assert (await call("GET", f"/Users/{u['id']}"))[0] == 404
        status, got = await call("GET", f"/Groups/{g['id']}")
        assert got.get("members", []) == []
