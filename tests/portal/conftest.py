"""Portal fixtures: the gateway on each backend and an :class:`Http` client over a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from gateway.store import Store
from browser_kit import CHROMIUM_ARGS, SCREENSHOTS, Gw, chromium_path, gateway_server
from portal_kit import PUBLIC, TOKEN, Http


@pytest.fixture
def gateway_app(unopened_store: Store, tmp_path: Path) -> web.Application:
    """The gateway on each configured backend: sessions must work wherever the store lives."""
    settings = Settings(database=str(tmp_path / "portal.db"), admin_token=TOKEN, public_url=PUBLIC)
    return create_app(settings, store=unopened_store)


@pytest.fixture
async def http(aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
               gateway_app: web.Application) -> Http:
    return Http(await aiohttp_client(gateway_app))




# -- browser tests -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, launched by Playwright through executable_path (one browser per module)."""
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium): the portal's browser tests need it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gw]:
    """One live gateway per module (SQLite file); tests make their own tenants."""
    server = gateway_server(tmp_path_factory.mktemp("live") / "portal.db")
    try:
        yield Gw(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save a screenshot of each screen (listed at the end of the run)."""
    return tmp_path_factory.getbasetemp() / "output" / "portal-screens"


@pytest.fixture
def page_for(chromium: Any, live: Gw) -> Iterator[Callable[..., Any]]:
    """``page_for(width=1280)``: a fresh browser context (own cookies) and page; console errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(width: int = 1280, height: int = 860) -> Any:
        ctx = chromium.new_context(viewport={"width": width, "height": height}, base_url=live.url)
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        # HTTP error statuses are the tests' to assert; anything else (a script error, a CSP refusal) fails
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not errors, f"errors in the browser console: {errors}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SCREENSHOTS:
        terminalreporter.section("portal screenshots")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))
