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
