"""Helpers for identity tests: the admin API client and IdP sample replay (fixtures live in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.testing import ScimClient

ADMIN_TOKEN = "adm_test_" + "Q" * 40
REPO = Path(__file__).resolve().parents[2]
OKTA_SAMPLES = REPO / "plugins" / "okta" / "tests" / "samples"
ENTRA_SAMPLES = REPO / "plugins" / "entra" / "tests" / "samples"


class Admin:
    """The admin API over the test client, authenticated with the test admin token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = ADMIN_TOKEN,
                   params: dict[str, str] | None = None, raw: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        resp = await self.client.request(method, "/api/v1" + path, data=data, headers=headers, params=params)
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)

    async def patch_tenant(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        status, body = await self.call("PATCH", f"/tenants/{tenant_id}", fields)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def users(self, tenant_id: str) -> dict[str, dict[str, Any]]:
        """All users of a tenant by userName."""
        status, body = await self.call("GET", f"/tenants/{tenant_id}/users", params={"limit": "500"})
        assert status == 200, body
        return {u["userName"]: u for u in body["users"]}

    async def roles(self, tenant_id: str, user_name: str) -> list[str]:
        return (await self.users(tenant_id))[user_name]["roles"]

    async def sign_in(self, tenant_id: str, user_name: str, **assertion: Any) -> tuple[int, Any]:
        return await self.call("POST", f"/tenants/{tenant_id}/sso/sign-in", {"userName": user_name, **assertion})

    async def events(self, tenant_id: str, type: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": "500", **({"type": type} if type else {})}
        status, body = await self.call("GET", f"/tenants/{tenant_id}/activity", params=params)
        assert status == 200, body
        return body["events"]  # type: ignore[no-any-return]


class Replay:
    """Sends recorded IdP samples (``plugins/*/tests/samples``) in order, filling in captured ids."""

    def __init__(self, scim: ScimClient, folder: Path) -> None:
        self.scim = scim
        self.folder = folder
        self.captured: dict[str, str] = {}

    def load(self, prefix: str) -> dict[str, Any]:
        path = next(self.folder.glob(f"{prefix}_*.json"))
        text = path.read_text()
        for name, value in self.captured.items():
            text = text.replace("{" + name + "}", value)
        return json.loads(text)  # type: ignore[no-any-return]

    async def send(self, prefix: str) -> tuple[int, Any]:
        sample = self.load(prefix)
        req = sample["request"]
        path, _, query = req["path"].partition("?")
        params = dict(p.split("=", 1) for p in query.split("&")) if query else None
        headers = {k: v for k, v in (req.get("headers") or {}).items() if k.lower() != "content-type"}
        status, body, _ = await self.scim.request(req["method"], path, req.get("body"), headers=headers, params=params)
        expected = sample["expected"]
        assert status in (expected["status"], *expected.get("status_alternatives", [])), (prefix, status, body)
        for name, field in (sample.get("capture") or {}).items():
            self.captured[name] = body[field]
        return status, body
