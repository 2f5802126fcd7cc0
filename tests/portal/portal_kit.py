"""The portal tests' kit: an HTTP client with explicit cookies, helpers to make links and sessions."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

from aiohttp.test_utils import TestClient


TOKEN = "adm_portal_test_" + "q" * 40
PUBLIC = "https://portal.example.test"


class Http:
    """Requests with explicit cookies only: the client's own cookie jar is emptied after each call."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def __call__(self, method: str, path: str, *, json: Any = None, data: Any = None, cookie: str | None = None,
                       token: str | None = None, origin: str | None = None, headers: dict[str, str] | None = None
                       ) -> tuple[int, Any, Any]:
        h: dict[str, str] = dict(headers or {})
        if cookie:
            h["Cookie"] = cookie
        if token:
            h["Authorization"] = f"Bearer {token}"
        if origin:
            h["Origin"] = origin
        resp = await self.client.request(method, path, json=json, data=data, headers=h, allow_redirects=False)
        text = await resp.text()
        self.client.session.cookie_jar.clear()
        body: Any = text
        if resp.content_type == "application/json" and text:
            body = await resp.json()
        return resp.status, body, resp

    async def api(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, out, _ = await self(method, "/api/v1" + path, json=body, **kw)
        return status, out

    async def tenant(self, name: str, **fields: Any) -> dict[str, Any]:
        status, t = await self.api("POST", "/tenants", {"name": name, **fields}, token=TOKEN)
        assert status == 201, t
        return t  # type: ignore[no-any-return]

    async def link(self, tenant_id: str, minutes: int | None = None) -> str:
        status, out = await self.api("POST", f"/tenants/{tenant_id}/portal-links",
                                     {"minutes": minutes} if minutes else None, token=TOKEN)
        assert status == 201, out
        return out["url"]  # type: ignore[no-any-return]

    async def redeem(self, url: str, origin: str = PUBLIC) -> tuple[int, str | None, Any]:
        """POST the link page's form: (status, the session cookie header value or None, response)."""
        token = url.split("token=", 1)[1]
        status, _, resp = await self("POST", "/portal/link", data={"token": token}, origin=origin)
        return status, session_cookie(resp), resp

    async def tenant_session(self, tenant_id: str) -> str:
        status, cookie, _ = await self.redeem(await self.link(tenant_id))
        assert status == 303 and cookie
        return cookie

    async def operator_session(self) -> str:
        status, _, resp = await self("POST", "/portal/login", data={"token": TOKEN}, origin=PUBLIC)
        cookie = session_cookie(resp)
        assert status == 303 and cookie
        return cookie


def session_cookie(resp: Any) -> str | None:
    for raw in resp.headers.getall("Set-Cookie", []):
        c = SimpleCookie()
        c.load(raw)
        for name, morsel in c.items():
            if "scimgw_portal" in name and morsel.value:
                return f"{name}={morsel.value}"
    return None


def set_cookie_attributes(resp: Any) -> str:
    return ";".join(v for v in resp.headers.getall("Set-Cookie", []) if "scimgw_portal" in v)


def link_token(url: str) -> str:
    m = re.search(r"token=([A-Za-z0-9_\-]+)$", url)
    assert m, url
    return m.group(1)
