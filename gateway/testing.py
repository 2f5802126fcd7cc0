"""The kit for testing the gateway and its plugins.

Use it from a test module or conftest with ``pytest_plugins = ["gateway.testing"]``. It gives:

- :func:`build_app`: a real gateway app on a real SQLite file, with the plugins you choose;
- the ``scim`` fixture: a :class:`ScimClient` (pytest-aiohttp's test client, authenticated as a
  fresh tenant with SCIM on), with SCIM helpers such as ``create_user``;
- :func:`run_hook`: call one hook of one plugin on a payload, with no server at all;
- the ``replay`` fixture: a :class:`Replay` that sends recorded vendor samples (``samples/*.json``
  next to your tests) in order to a live gateway and checks what the IdP depends on.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import pluggy
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway import hookspecs
from gateway.app import create_app
from gateway.core import routes
from gateway.http.appkeys import gateway_key
from gateway.identity.tenants import create_api_key, create_tenant
from gateway.plugin_manager import entry_point_name
from gateway.selftest.sequence import contains
from gateway.settings import Settings
from gateway.store.base import TenantRow
from gateway.types import Client, ScimRequest, Tenant

SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def build_app(
    database: str | Path,
    *,
    plugins: Iterable[Any] = (),
    load_entrypoints: bool = True,
    **settings: Any,
) -> web.Application:
    """A gateway application on ``database`` (a SQLite file path or a PostgreSQL URL)."""
    s = Settings(database=str(database), public_url=settings.pop("public_url", "https://scim.example.test"), **settings)
    return create_app(s, plugins=plugins, load_entrypoints=load_entrypoints)


class ScimClient:
    """An authenticated SCIM client for one tenant, over pytest-aiohttp's real HTTP test client."""

    def __init__(self, client: TestClient[Any, Any], tenant: TenantRow, key: str) -> None:
        self.client = client
        self.tenant = tenant
        self.key = key
        self.base = f"/scim/v2/{tenant.id}"

    @property
    def app(self) -> web.Application:
        app: web.Application | None = self.client.app
        assert app is not None
        return app

    @property
    def gateway(self) -> Any:
        return self.app[gateway_key]

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        key: str | None = None,
        raw: bytes | str | None = None,
    ) -> tuple[int, Any, Any]:
        """Send a request to ``<tenant base><path>``; returns (status, parsed JSON body or None, response)."""
        h = {"Authorization": f"Bearer {key or self.key}"}
        if body is not None or raw is not None:
            h["Content-Type"] = SCIM_JSON
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        resp = await self.client.request(method, self.base + path, data=data, headers=h, params=params)
        text = await resp.text()
        parsed = json.loads(text) if text else None
        return resp.status, parsed, resp

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, operations: list[dict[str, Any]], **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("PATCH", path, {"schemas": [PATCH_OP], "Operations": operations}, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("DELETE", path, **kw)

    async def create_user(self, user_name: str, **attrs: Any) -> dict[str, Any]:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attrs}
        status, doc, _ = await self.post("/Users", body)
        assert status == 201, (status, doc)
        return doc  # type: ignore[no-any-return]

    async def create_group(self, display_name: str, members: list[str] = (), **attrs: Any) -> dict[str, Any]:  # type: ignore[assignment]
        body = {"schemas": [GROUP_SCHEMA], "displayName": display_name,
                "members": [{"value": m} for m in members], **attrs}
        status, doc, _ = await self.post("/Groups", body)
        assert status == 201, (status, doc)
        return doc  # type: ignore[no-any-return]

    async def other_tenant(self, name: str = "Other", *, idp: str = "auto", scim: bool = True) -> "ScimClient":
        """A second tenant on the same server, for isolation tests."""
        tenant, key = await add_tenant(self.app, name, idp=idp, scim=scim)
        return ScimClient(self.client, tenant, key)


async def add_tenant(app: web.Application, name: str, *, idp: str = "auto", scim: bool = True) -> tuple[TenantRow, str]:
    """Create a tenant with an API key on a started app; returns (tenant, key)."""
    store = app[gateway_key].store
    tenant = await create_tenant(store, name, idp=idp, scim_enabled=scim)
    key = await create_api_key(store, tenant.id, f"{name} test key")
    return tenant, key.key


def run_hook(plugin: Any, hook: str, *, plugin_name: str | None = None, **kwargs: Any) -> Any:
    """Call ``hook`` on ``plugin`` alone (no server, no other plugin) and return its result.

    Arguments are passed as the gateway passes them; the dicts you hand in are edited in place,
    exactly as in production. ``request`` and ``client`` default to plain GET ones. The plugin is
    registered under ``plugin_name``, else its entry-point name, else ``plugin-under-test``.
    The call goes through pluggy, so an implementation may declare fewer parameters than the spec.
    """
    pm = pluggy.PluginManager("scim_gateway")
    pm.add_hookspecs(hookspecs)
    name = plugin_name or entry_point_name(plugin) or "plugin-under-test"
    pm.register(plugin, name=name)
    caller = getattr(pm.hook, hook)
    params = caller.spec.argnames if caller.spec else ()
    if "request" in params and "request" not in kwargs:
        kwargs["request"] = make_request()
    if "client" in params and "client" not in kwargs:
        kwargs["client"] = Client(name)
    if "tenant" in params and "tenant" not in kwargs:
        kwargs["tenant"] = kwargs["request"].tenant
    return caller(**kwargs)


def make_request(
    method: str = "GET",
    path: str = "/Users",
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    idp: str = "auto",
) -> ScimRequest:
    """A synthetic :class:`ScimRequest`, for hook unit tests."""
    route = routes.match(path)
    tenant = Tenant(id="test-tenant", name="Test", idp=idp, scim_enabled=True)
    return ScimRequest(
        method=method,
        path=path,
        resource_type=route.resource_type if route else None,
        resource_id=route.resource_id if route else None,
        query=dict(query or {}),
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=copy.deepcopy(body),
        tenant=tenant,
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1, for tests that start a real ``scim-gateway serve``."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_sample(folder: Path, name: str) -> dict[str, Any]:
    """Load a recorded vendor sample (``samples/<name>.json``) next to a test module."""
    return json.loads((folder / "samples" / f"{name}.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def gateway_database(tmp_path: Path) -> str:
    """The database the ``scim`` fixture uses: a real SQLite file, or ``SCIM_GATEWAY_TEST_DATABASE``."""
    return str(tmp_path / "gateway.db")


@pytest.fixture
def gateway_plugins() -> list[Any]:
    """Explicit plugins for the ``scim`` fixture's app; override it to test your own plugin."""
    return []


@pytest.fixture
def gateway_app(gateway_database: str, gateway_plugins: list[Any]) -> web.Application:
    return build_app(gateway_database, plugins=gateway_plugins)


@pytest.fixture
async def scim(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]], gateway_app: web.Application
) -> AsyncIterator[ScimClient]:
    """A :class:`ScimClient` for a fresh tenant (idp ``auto``, SCIM on) on a live gateway."""
    client = await aiohttp_client(gateway_app)
    tenant, key = await add_tenant(client.app, "Test Tenant")
    yield ScimClient(client, tenant, key)


# -- recorded vendor samples ------------------------------------------------------------------------
# A sample file holds ``request`` {method, path, headers, body}, ``expected`` {status,
# status_alternatives, body_contains, body_absent_keys} and ``capture`` ({"user_id": "id"}: keep the
# response's ``id`` as ``{user_id}`` for later steps).

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class Replay:
    """Replays recorded vendor samples against a live gateway, capturing ids as the samples say."""

    def __init__(self, scim: ScimClient, folder: Path, headers: dict[str, str] | None = None) -> None:
        self.scim = scim
        self.folder = folder
        self.headers = headers or {}
        self.vars: dict[str, str] = {}

    def names(self) -> list[str]:
        return sorted(p.stem for p in (self.folder / "samples").glob("*.json"))

    def load(self, name: str) -> dict[str, Any]:
        """A sample by file stem or number prefix (``"05"``), placeholders filled from earlier captures."""
        stem = next(n for n in self.names() if n == name or n.split("_", 1)[0] == name)
        raw = json.loads((self.folder / "samples" / f"{stem}.json").read_text())
        raw["name"] = stem
        return self._fill(raw)  # type: ignore[no-any-return]

    def _fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: self.vars.get(m.group(1), m.group(0)), value)
        if isinstance(value, list):
            return [self._fill(v) for v in value]
        if isinstance(value, dict):
            return {self._fill(k): self._fill(v) for k, v in value.items()}
        return value

    async def send(self, sample: dict[str, Any] | str, *, check: bool = True) -> tuple[int, Any]:
        """Send one sample's request; with ``check``, assert its expected status and body parts."""
        s = self.load(sample) if isinstance(sample, str) else sample
        req = s["request"]
        path, _, qs = req["path"].partition("?")
        params = dict(urllib.parse.parse_qsl(qs, keep_blank_values=True)) if qs else None
        headers = {**self.headers, **(req.get("headers") or {})}
        status, body, _ = await self.scim.request(req["method"], path, req.get("body"), headers=headers, params=params)
        if check:
            self.check(s, status, body)
        for var, field in (s.get("capture") or {}).items():
            if isinstance(body, dict) and field in body:
                self.vars[var] = body[field]
            else:
                assert not check, (s["name"], status, body)
        return status, body

    def check(self, s: dict[str, Any], status: int, body: Any) -> None:
        exp = s["expected"]
        allowed = [exp["status"], *exp.get("status_alternatives", [])]
        assert status in allowed, f"{s['name']}: status {status} not in {allowed}: {body}"
        if status != 204 and exp.get("body_contains") is not None:
            assert contains(body, exp["body_contains"]), f"{s['name']}: {body} lacks {exp['body_contains']}"
        for key in exp.get("body_absent_keys", []):
            assert key not in (body or {}), f"{s['name']}: {key!r} must be absent"

    async def run_all(self, *, skip: Callable[[str], bool] = lambda name: False) -> None:
        """The whole sequence in file order. Steps ``skip`` names are still sent but not checked."""
        for name in self.names():
            await self.send(name, check=not skip(name))


@pytest.fixture
def replay(scim: ScimClient) -> Callable[..., Replay]:
    """``replay(folder, headers=None, client=None)``: a :class:`Replay` on ``scim`` or another tenant's client."""

    def make(folder: Path, headers: dict[str, str] | None = None, client: ScimClient | None = None) -> Replay:
        return Replay(client or scim, folder, headers)

    return make
