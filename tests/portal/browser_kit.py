"""The browser tests' kit: a real gateway on a real port (its own thread and event loop), Debian's
Chromium driven by Playwright through ``executable_path``, plain HTTP helpers, and screenshots."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import create_app
from gateway.settings import Settings
from gateway.testing import free_port

ADMIN = "adm_browser_" + "b" * 40
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCREENSHOTS: list[Path] = []


def chromium_path() -> str | None:
    """Debian's chromium (``apt-get install chromium``); SCIM_GATEWAY_TEST_CHROMIUM overrides."""
    explicit = os.environ.get("SCIM_GATEWAY_TEST_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


class LiveServer:
    """An aiohttp application served on 127.0.0.1:<port> from a background thread."""

    def __init__(self, app: web.Application, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> "LiveServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def gateway_server(db: Path) -> LiveServer:
    port = free_port()
    settings = Settings(database=str(db), admin_token=ADMIN, public_url=f"http://127.0.0.1:{port}")
    return LiveServer(create_app(settings), port).start()


def call(method: str, url: str, body: Any = None, *, token: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One HTTP request with the standard library: (status, parsed JSON body or text)."""
    h = {"Accept": "application/json", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    text = raw.decode() if raw else ""
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


class Gw:
    """The operator's view of the live gateway, through the admin API."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.url = server.url

    def api(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        kw.setdefault("token", ADMIN)
        return call(method, self.url + "/api/v1" + path, body, **kw)

    def tenant(self, name: str, **fields: Any) -> dict[str, Any]:
        status, t = self.api("POST", "/tenants", {"name": name, **fields})
        assert status == 201, t
        return t  # type: ignore[no-any-return]

    def link(self, tenant_id: str, minutes: int = 5) -> str:
        status, out = self.api("POST", f"/tenants/{tenant_id}/portal-links", {"minutes": minutes})
        assert status == 201, out
        return out["url"]  # type: ignore[no-any-return]

    def key(self, tenant_id: str, name: str = "test") -> str:
        status, out = self.api("POST", f"/tenants/{tenant_id}/api-keys", {"name": name})
        assert status == 201, out
        return out["key"]  # type: ignore[no-any-return]


def scim(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    return call(method, url, body, token=key, headers={"Content-Type": "application/scim+json", "Accept": "application/scim+json"})


def new_user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, "active": True,
            "name": {"givenName": user_name.split("@")[0].title(), "familyName": "Tester"},
            "emails": [{"value": user_name, "type": "work", "primary": True}], **extra}


def shot(page: Any, folder: Path, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of the page as it is now; the run's summary lists every path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    SCREENSHOTS.append(path)
    print(f"screenshot: {path}")
    return path
