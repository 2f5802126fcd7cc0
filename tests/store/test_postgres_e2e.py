"""HTTP end to end on PostgreSQL: the gateway's SCIM API over a real server, two processes sharing it.

Runs only when ``SCIM_GATEWAY_TEST_POSTGRES`` holds a DSN (``.ci/run`` sets it); each test gets its
own schema, dropped afterwards. "Two gateway processes" are two independent apps, each with its own
:class:`PostgresStore` (own pool) on the same schema: nothing is shared between them but the database.
The ``?`` renumbering tests at the end need no server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.postgres import PostgresStore, renumber
from gateway.testing import ScimClient, add_tenant

POSTGRES_DSN = os.environ.get("SCIM_GATEWAY_TEST_POSTGRES")
needs_postgres = pytest.mark.skipif(not POSTGRES_DSN, reason="SCIM_GATEWAY_TEST_POSTGRES is not set")

ClientFactory = Callable[[web.Application], Awaitable["TestClient[web.Request, web.Application]"]]


def pg_app(schema: str, *, owner: bool) -> web.Application:
    """A gateway app on ``schema``; only the owner drops the schema when its app shuts down."""
    assert POSTGRES_DSN
    settings = Settings(database=POSTGRES_DSN, public_url="https://scim.example.test")
    store = PostgresStore(POSTGRES_DSN, schema=schema, drop_schema_on_close=owner)
    return create_app(settings, store=store, load_entrypoints=False)


@pytest.fixture
def schema() -> str:
    return f"e2e_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pair(aiohttp_client: ClientFactory, schema: str) -> AsyncIterator[tuple[ScimClient, ScimClient]]:
    """Two gateways ("processes") on one PostgreSQL schema, each authenticated as the same tenant."""
    # The owner starts first (migrates) and, being created first, is torn down last by pytest-aiohttp.
    first = await aiohttp_client(pg_app(schema, owner=True))
    second = await aiohttp_client(pg_app(schema, owner=False))
    tenant, key = await add_tenant(first.app, "PG Tenant")
    yield ScimClient(first, tenant, key), ScimClient(second, tenant, key)


@pytest.fixture
def pg(pair: tuple[ScimClient, ScimClient]) -> ScimClient:
    return pair[0]


@needs_postgres
async def test_pg_create_user_and_lookup_user_name_case_insensitively(pg: ScimClient) -> None:
    u = await pg.create_user("Zoë.Smith@Example.COM", displayName="Zoë Smith", active=True,
                             emails=[{"value": "Zoe@Example.com", "type": "work", "primary": True}])
    status, got, _ = await pg.get(f"/Users/{u['id']}")
    assert status == 200 and got["userName"] == "Zoë.Smith@Example.COM" and got["active"] is True
    status, found, _ = await pg.get("/Users", params={"filter": 'userName eq "zoË.smith@example.com"'})
    assert status == 200 and found["totalResults"] == 1 and found["Resources"][0]["id"] == u["id"]
    status, found, _ = await pg.get("/Users", params={"filter": 'emails[type eq "work" and value co "zoe@"]'})
    assert status == 200 and [r["id"] for r in found["Resources"]] == [u["id"]]


@needs_postgres
async def test_pg_duplicate_user_name_any_case_is_409(pg: ScimClient) -> None:
    await pg.create_user("dup@example.com")
    status, err, _ = await pg.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                              "userName": "DUP@example.com"})
    assert status == 409 and err["scimType"] == "uniqueness" and "userName" in err["detail"]
    status, listed, _ = await pg.get("/Users")
    assert listed["totalResults"] == 1  # the failed transaction left nothing behind


@needs_postgres
async def test_pg_patch_user_bumps_version_and_filters_on_booleans(pg: ScimClient) -> None:
    u = await pg.create_user("patch@example.com")
    status, body, resp = await pg.patch(f"/Users/{u['id']}", [{"op": "replace", "path": "active", "value": False},
                                                             {"op": "add", "path": "title", "value": "Engineer"}])
    assert status == 200 and body["active"] is False and body["title"] == "Engineer"
    assert resp.headers["ETag"] == 'W/"2"'
    status, found, _ = await pg.get("/Users", params={"filter": "active eq false"})
    assert [r["id"] for r in found["Resources"]] == [u["id"]]
    status, page, _ = await pg.get("/Users", params={"startIndex": "2"})  # OFFSET without a count
    assert status == 200 and page["Resources"] == [] and page["totalResults"] == 1


@needs_postgres
async def test_pg_group_member_add_and_remove(pg: ScimClient) -> None:
    u1 = await pg.create_user("m1@example.com", displayName="Member One")
    u2 = await pg.create_user("m2@example.com")
    u3 = await pg.create_user("m3@example.com")
    g = await pg.create_group("Admins", members=[u1["id"]])
    status, _, resp = await pg.patch(f"/Groups/{g['id']}", [
        {"op": "add", "path": "members", "value": [{"value": u2["id"]}, {"value": u3["id"]}, {"value": u1["id"]}]},
    ])
    assert status == 204 and resp.headers["ETag"] == 'W/"2"'
    status, _, _ = await pg.patch(f"/Groups/{g['id']}", [{"op": "remove", "path": f'members[value eq "{u1["id"]}"]'}])
    assert status == 204
    status, got, _ = await pg.get(f"/Groups/{g['id']}")
    assert sorted(m["value"] for m in got["members"]) == sorted([u2["id"], u3["id"]])
    status, user, _ = await pg.get(f"/Users/{u2['id']}")
    assert [x["value"] for x in user["groups"]] == [g["id"]]


@needs_postgres
async def test_pg_two_gateways_concurrent_member_patches_lose_nothing(pair: tuple[ScimClient, ScimClient]) -> None:
    a, b = pair
    users = [await a.create_user(f"c{i}@example.com") for i in range(24)]
    g = await a.create_group("Everyone")

    async def add(i: int) -> None:
        client = a if i % 2 else b
        status, body, _ = await client.patch(f"/Groups/{g['id']}", [
            {"op": "add", "path": "members", "value": [{"value": users[i]["id"]}]},
        ])
        assert status == 204, body

    async def rename() -> None:
        status, body, _ = await b.patch(f"/Groups/{g['id']}", [{"op": "replace", "path": "displayName",
                                                                "value": "Everyone (renamed)"}])
        assert status == 204, body

    await asyncio.gather(*(add(i) for i in range(len(users))), rename())
    for client in (a, b):  # both processes see the same committed state
        status, got, resp = await client.get(f"/Groups/{g['id']}")
        assert status == 200
        assert len(got["members"]) == len(users)
        assert got["displayName"] == "Everyone (renamed)"  # no member PATCH wrote back a stale document
        assert resp.headers["ETag"] == f'W/"{1 + len(users) + 1}"'  # every PATCH got its own version


@needs_postgres
async def test_pg_two_gateways_start_concurrently_and_migrate_once(aiohttp_client: ClientFactory, schema: str) -> None:
    assert POSTGRES_DSN
    stores = [PostgresStore(POSTGRES_DSN, schema=schema, drop_schema_on_close=(i == 0)) for i in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        async with stores[1].read() as r:
            assert await r.list_tenants() == []
    finally:
        for s in reversed(stores):
            await s.close()


# --- placeholder renumbering (no server needed) --------------------------------------------
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("a = ? AND b IN (?, ?)", "a = $1 AND b IN ($2, $3)"),
        ("a = '?' AND b = ?", "a = '?' AND b = $1"),
        ("a = 'it''s ?' AND b = ?", "a = 'it''s ?' AND b = $1"),
        ("a = E'\\'?' AND b = ?", "a = E'\\'?' AND b = $1"),
        ('"we?rd" = ?', '"we?rd" = $1'),
        ("-- ?\nx = ?", "-- ?\nx = $1"),
        ("/* ? */ x = ?", "/* ? */ x = $1"),
        ("$$?$$ || $tag$ ? $tag$ || ?", "$$?$$ || $tag$ ? $tag$ || $1"),
        ("a$b = ?", "a$b = $1"),
        ("x = $1", "x = $1"),
        ("SELECT * FROM t WHERE a = ? AND b = ? LIMIT ?", "SELECT * FROM t WHERE a = $1 AND b = $2 LIMIT $3"),
    ],
)
def test_renumber_skips_literals_identifiers_and_comments(sql: str, expected: str) -> None:
    assert renumber(sql) == expected


def test_renumber_keeps_no_module_level_state() -> None:
    """Placeholders are numbered per statement; the backend holds no module-level statement cache."""
    import gateway.store.postgres as pg

    caches = [n for n, v in vars(pg).items() if isinstance(v, dict) and not n.startswith("__")]
    assert caches == []


def test_postgres_store_rejects_unsafe_schema_names() -> None:
    with pytest.raises(ValueError):
        PostgresStore("postgresql://localhost/x", schema='x"; DROP TABLE users; --')
    with pytest.raises(ValueError):
        PostgresStore("postgresql://localhost/x", drop_schema_on_close=True)
