"""Foundations: the plugin-facing types, the route table, the layering and the activity log's record."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gateway import ScimRequest, Tenant, hookimpl
from gateway.core import routes
from gateway.core.errors import NotFoundError
from gateway.store.base import TenantRow
from gateway.testing import PATCH_OP, USER_SCHEMA, ScimClient, add_tenant, build_app, make_request


class TenantSpy:
    """Claims requests with ``X-Spy: 1`` and keeps the tenant object it was handed."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def scim_identify_client(self, request: ScimRequest, tenant: Tenant) -> str | None:
        self.seen.append(tenant)
        return "spy" if request.headers.get("x-spy") == "1" else None


@pytest.fixture
def spy() -> TenantSpy:
    return TenantSpy()


@pytest.fixture
def gateway_plugins(spy: TenantSpy) -> list[Any]:
    return [("spy", spy)]


async def test_plugins_see_a_read_only_tenant_of_their_own_not_the_store_row(scim: ScimClient, spy: TenantSpy) -> None:
    status, _, _ = await scim.get("/Users", headers={"X-Spy": "1"})
    assert status == 200
    tenant = spy.seen[-1]
    assert type(tenant) is Tenant and not isinstance(tenant, TenantRow)
    assert (tenant.id, tenant.idp, tenant.scim_enabled) == (scim.tenant.id, "auto", True)
    assert not hasattr(tenant, "role_mapping")  # store columns the core owns stay out of plugin reach
    with pytest.raises(dataclasses.FrozenInstanceError):
        tenant.scim_enabled = False
    with pytest.raises(TypeError):
        tenant.settings["x"] = 1  # type: ignore[index]


# -- layering: no import cycles among gateway modules --------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _module_graph() -> dict[str, set[str]]:
    """Module -> gateway modules it imports (anywhere in the file, TYPE_CHECKING blocks included)."""
    mods: dict[str, Path] = {}
    for path in (ROOT / "gateway").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):  # a package's own parents
                    deps.add(target)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_gateway_modules_import_each_other_without_cycles() -> None:
    # Typical fixes: the running Gateway is gateway.runtime.Gateway (no aiohttp); a store mixin takes
    # Conn from gateway.store.conn, never from gateway.store.sql.
    assert _cycles(_module_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# -- the one route table -----------------------------------------------------------------------


class RouteSpy:
    """Claims requests with ``X-Route-Spy: 1`` and records (method, path, resource_type, resource_id)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None, str | None]] = []

    @hookimpl
    def scim_identify_client(self, request: ScimRequest, tenant: Tenant) -> str | None:
        self.seen.append((request.method, request.path, request.resource_type, request.resource_id))
        return None


ROUTE_CASES = [
    ("GET", "/Users", "User", None),
    ("GET", "/users/abc", "User", "abc"),
    ("POST", "/Users/.search", "User", None),
    ("POST", "/Groups/.search", "Group", None),
    ("POST", "/.search", None, None),
    ("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", None, None),
    ("GET", "/Nope", None, None),
]


@pytest.mark.parametrize(("method", "path", "rtype", "rid"), ROUTE_CASES)
def test_route_table_agrees_with_the_test_kit(method: str, path: str, rtype: str | None, rid: str | None) -> None:
    sreq = make_request(method, path)
    assert (sreq.resource_type, sreq.resource_id) == (rtype, rid)


async def test_http_bulk_and_test_kit_describe_requests_alike(aiohttp_client: Any, tmp_path: Path) -> None:
    """The same paths through HTTP, through Bulk and through make_request give plugins the same request."""
    spy = RouteSpy()
    client = await aiohttp_client(build_app(tmp_path / "g.db", plugins=[("route-spy", spy)]))
    tenant, key = await add_tenant(client.app, "Routes")
    scim = ScimClient(client, tenant, key)
    for method, path, _, _ in ROUTE_CASES:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]} if method == "POST" else None
        await scim.request(method, path, body)
    over_http = spy.seen[:]
    assert over_http == [(m, p, make_request(m, p).resource_type, make_request(m, p).resource_id)
                         for m, p, _, _ in ROUTE_CASES]
    spy.seen.clear()
    ops = [{"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": [USER_SCHEMA], "userName": "r@x"}},
           {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"schemas": [PATCH_OP], "Operations": [
               {"op": "replace", "path": "active", "value": False}]}},
           {"method": "POST", "path": "/Users/.search", "bulkId": "s1", "data": {}}]
    status, _, _ = await scim.post("/Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                                             "Operations": ops})
    assert status == 200
    bulk_seen = spy.seen[1:]  # the Bulk request itself first, then one per operation
    assert [(m, rt, rid is not None) for m, _, rt, rid in bulk_seen] == [
        ("POST", "User", False), ("PATCH", "User", True), ("POST", "User", False)]
    assert bulk_seen[2][3] is None  # /Users/.search addresses no resource, in Bulk as over HTTP


def test_route_table_methods_and_unknown_paths() -> None:
    assert routes.resolve("/Users").methods == {"GET", "POST"}
    assert routes.resolve("/Users/x").methods == {"GET", "PUT", "PATCH", "DELETE"}
    assert routes.match("/Users/a/b") is None and routes.match("/") is None
    with pytest.raises(NotFoundError):
        routes.resolve("/Widgets")


# -- work done once ----------------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement the SQLite store runs, in order."""
    from gateway.store import sqlite

    seen: list[str] = []
    for cls in (sqlite._Conn, sqlite._SyncConn):
        for name in ("fetch", "fetchrow", "execute", "executemany"):
            original = getattr(cls, name)

            def wrapped(self: Any, sql: str, *args: Any, _original: Any = original) -> Any:
                seen.append(sql)
                return _original(self, sql, *args)

            monkeypatch.setattr(cls, name, wrapped)
    return seen


async def test_list_groups_loads_members_for_the_whole_page_at_once(scim: ScimClient, statements: list[str]) -> None:
    users = [(await scim.create_user(f"m{i}@example.com"))["id"] for i in range(3)]
    counts = []
    for total in (2, 6):
        while len([s for s in (await scim.get("/Groups"))[1]["Resources"]]) < total:
            await scim.create_group(f"g{len(counts)}-{len(statements)}", members=users)
        statements.clear()
        status, body, _ = await scim.get("/Groups")
        assert status == 200 and len(body["Resources"]) == total
        assert all(len(g["members"]) == 3 for g in body["Resources"])
        counts.append(len(statements))
    assert counts[0] == counts[1], counts  # statements per page do not grow with the groups on it


async def test_create_with_the_default_correlation_runs_no_lookup_and_still_refuses_duplicates(
    scim: ScimClient, statements: list[str]
) -> None:
    await scim.create_user("Okta.User@example.com")
    lookups = [s for s in statements if s.lstrip().upper().startswith("SELECT") and " FROM users" in s]
    assert lookups == []  # the UNIQUE index on the folded userName is the check
    status, err, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "okta.user@EXAMPLE.com"})
    assert status == 409 and err["scimType"] == "uniqueness"  # Okta stops on exactly this


class LockProbe:
    """Records whether the store's write lock is held while its correlation hook runs."""

    def __init__(self) -> None:
        self.locked: list[bool] = []
        self.gateway: Any = None

    @hookimpl
    def scim_startup(self, gateway: Any) -> None:
        self.gateway = gateway

    @hookimpl
    def scim_correlation_filter(self, resource: dict[str, Any]) -> str | None:
        self.locked.append(self.gateway.store._write_lock.locked())
        return f'externalId eq "{resource.get("externalId")}"'


async def test_correlation_hooks_run_outside_the_write_lock(aiohttp_client: Any, tmp_path: Path) -> None:
    probe = LockProbe()
    client = await aiohttp_client(build_app(tmp_path / "c.db", plugins=[("probe", probe)]))
    tenant, key = await add_tenant(client.app, "Locks")
    scim = ScimClient(client, tenant, key)
    await scim.create_user("a@example.com", externalId="ext-1")
    status, err, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "b@example.com",
                                                "externalId": "ext-1"})
    assert status == 409 and err["scimType"] == "uniqueness"  # a plugin's own filter still runs as a query
    assert probe.locked == [False, False]


# -- the published Enterprise User schema ----------------------------------------------------------

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def test_enterprise_manager_sub_attributes_are_optional_as_the_gateway_answers(scim: ScimClient) -> None:
    """RFC 7643 §4.3 and §8.7.1: manager.value and manager.$ref are optional; our answers omit $ref."""
    status, schema, _ = await scim.get(f"/Schemas/{ENTERPRISE}")
    assert status == 200
    manager = next(a for a in schema["attributes"] if a["name"] == "manager")
    required = {s["name"]: s["required"] for s in manager["subAttributes"]}
    assert required == {"value": False, "$ref": False, "displayName": False}
    boss = await scim.create_user("boss@example.com")
    doc = await scim.create_user("emp@example.com", schemas=[USER_SCHEMA, ENTERPRISE],
                                 **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    given = doc[ENTERPRISE]["manager"]
    assert all(name in given for name, req in required.items() if req), given  # the schema and the answer agree


# -- the admin API's 405 ---------------------------------------------------------------------------


async def test_admin_api_answers_405_with_allow_for_a_wrong_method(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(build_app(tmp_path / "a.db", admin_token="adm_" + "x" * 40))
    auth = {"Authorization": "Bearer adm_" + "x" * 40}
    resp = await client.delete("/api/v1/tenants", headers=auth)
    assert resp.status == 405 and {m.strip() for m in resp.headers["Allow"].split(",")} >= {"GET", "POST"}
    body = await resp.json()
    assert body["error"] == "method_not_allowed" and "DELETE" in body["detail"]
    resp = await client.get("/api/v1/no-such-thing", headers=auth)
    assert resp.status == 404
