"""The trigram index behind co/sw/ew narrows and never decides: results equal the reference evaluator's.

The SQLite test backend (conftest) runs every query twice, with and without the index's candidate set,
and asserts both agree; these tests add data dense in shared substrings (so needles of three and more
characters really match), short needles that must fall back to the scan, writes through the real store
(the triggers keep the index in step with updates and deletes), and the query plan (the index drives
the query instead of a scan of the tenant).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.filter import matches, parse_filter
from gateway.core.schema import group_type, user_type
from gateway.core.service import ListParams, ScimService
from gateway.core.sqlfilter import timestamp_text
from gateway.core.substring import compile_narrowing
from gateway.identity.tenants import create_tenant
from gateway.store.sqlite import SqliteStore

TENANT = "t"  # the tenant created in the plan check below

# A tiny alphabet makes shared trigrams common; É/é and ß exercise folding beyond ASCII, '"' the quoting.
DENSE = st.text(alphabet='abAB É é ß"-', min_size=0, max_size=9)
NEEDLE = st.text(alphabet='abAB É é ß"-', min_size=0, max_size=5)
CREATED = timestamp_text(datetime(2020, 1, 1, tzinfo=timezone.utc))


@st.composite
def dense_user(draw: st.DrawFn, n: int) -> dict[str, Any]:
    data: dict[str, Any] = {"userName": draw(DENSE) + f"#{n}"}
    for attr in ("displayName", "externalId"):
        if draw(st.booleans()):
            data[attr] = draw(DENSE)
    emails = [{"value": draw(DENSE)} for _ in range(draw(st.integers(0, 3)))]
    if emails:
        data["emails"] = emails
    return data


@st.composite
def substring_filter(draw: st.DrawFn) -> str:
    def one() -> str:
        path = draw(st.sampled_from(["userName", "displayName", "externalId", "emails.value", "emails", "title"]))
        needle = draw(NEEDLE).replace("\\", "").replace('"', '\\"')
        return f'{path} {draw(st.sampled_from(["co", "sw", "ew"]))} "{needle}"'

    shape = draw(st.sampled_from(["one", "and", "and3", "or", "not"]))
    if shape == "one":
        return one()
    if shape == "and":
        return f"{one()} and {one()}"
    if shape == "and3":
        return f"({one()} and {one()}) and {one()}"
    if shape == "or":
        return f"{one()} or {one()}"
    return f"not ({one()}) and {one()}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(users=st.integers(1, 8).flatmap(lambda n: st.tuples(*[dense_user(i) for i in range(n)])),
       filters=st.lists(substring_filter(), min_size=1, max_size=6))
def test_substring_index_exact_on_dense_data(sqlite_module_backend: Any, users: Any, filters: list[str]) -> None:
    b = sqlite_module_backend
    b.clear()
    resources = {}
    for i, data in enumerate(users):
        b.insert_user(f"u{i}", data, CREATED, CREATED, 1)
        resources[f"u{i}"] = b.render_user(data, f"u{i}", CREATED, CREATED, 1)
    rtype = user_type()
    for text in filters:
        expected = {uid for uid, res in resources.items() if matches(parse_filter(text), res, rtype)}
        assert b.query(text) == expected, text  # b.query also asserts index-narrowed == scanned


def test_substring_index_groups_and_other_tenants(backend: Any) -> None:
    if backend.dialect != "sqlite":
        pytest.skip("the narrowing is SQLite's; PostgreSQL's GIN indexes need no rewriting")
    backend.insert_group("g1", {"displayName": "Engineering Berlin", "externalId": "EXT-42"}, CREATED, CREATED, 1, [])
    backend.insert_group("g2", {"displayName": "Sales"}, CREATED, CREATED, 1, [])
    backend.insert_group("g3", {"displayName": "Engineering Paris"}, CREATED, CREATED, 1, [], tenant="t2")
    gt = group_type()
    assert backend.query('displayName co "NEER"', gt) == {"g1"}
    assert backend.query('externalId sw "EXT"', gt) == {"g1"}
    assert backend.query('externalId sw "ext"', gt) == set()  # caseExact
    assert backend.query('displayName ew "es"', gt) == {"g2"}  # shorter than a trigram: scanned


def test_narrowing_only_for_positive_top_level_terms() -> None:
    rt = user_type()

    def n(f: str) -> Any:
        return compile_narrowing(parse_filter(f), rt, "sqlite")

    assert n('userName co "Abc"') == ("SELECT rowid FROM user_name_search WHERE user_name_search MATCH ?", ['"abc"'])
    assert n('userName co "ab"') is None  # < 3 characters: no trigram, the scan decides
    assert n('userName co "abc" or displayName co "xyz"') is None
    assert n('not (userName co "abc")') is None
    assert n('title co "abc"') is None  # not indexed
    both = n('emails.value co "A\\"B" and active eq true and externalId ew "XyZ" and emails sw "cde"')
    assert both == ("SELECT rowid FROM user_email_search WHERE user_email_search MATCH ? INTERSECT"
                    " SELECT rowid FROM user_external_search WHERE user_external_search MATCH ?",
                    ['"a""b" AND "cde"', '"XyZ"'])
    assert n('userName co "abc"'.replace("co", "sw")) is not None
    assert compile_narrowing(parse_filter('userName co "abc"'), rt, "postgres") is None


async def _service(tmp_path: Path) -> tuple[SqliteStore, ScimService, Any]:
    store = SqliteStore(str(tmp_path / "s.db"))
    await store.open()
    tenant = await create_tenant(store, "t", scim_enabled=True)
    return store, ScimService(store, base_url=lambda t: f"https://x/scim/v2/{t}"), tenant


async def test_substring_index_follows_writes(tmp_path: Path) -> None:
    store, svc, tenant = await _service(tmp_path)
    ut = user_type()
    try:
        async def names(flt: str) -> set[str]:
            page = await svc.search(tenant, ut, ListParams(filter=flt, count=100))
            assert page.body is not None
            return {r["userName"] for r in page.body["Resources"]}

        a = await svc.create(tenant, ut, {"schemas": [ut.schema], "userName": "Alice.Wonder@Example.com",
                                          "displayName": "Alice W", "externalId": "okta-ABC",
                                          "emails": [{"value": "alice@work.example"}, {"value": "aw@home.example"}]})
        await svc.create(tenant, ut, {"schemas": [ut.schema], "userName": "bob@example.com"})
        assert await names('userName co "WONDER"') == {"Alice.Wonder@Example.com"}
        assert await names('emails.value co "HOME.ex"') == {"Alice.Wonder@Example.com"}
        assert await names('emails co "e@w"') == {"Alice.Wonder@Example.com"}  # alice@work
        assert await names('externalId ew "ABC"') == {"Alice.Wonder@Example.com"}
        uid = a.body["id"] if a.body else ""
        await svc.replace(tenant, ut, uid, {"schemas": [ut.schema], "userName": "carol@example.com",
                                            "emails": [{"value": "carol@new.example"}]})
        assert await names('userName co "wonder"') == set()
        assert await names('emails.value co "home.ex"') == set()
        assert await names('emails.value co "new.ex"') == {"carol@example.com"}
        assert await names('displayName co "ice"') == set()
        await svc.delete(tenant, ut, uid)
        assert await names('userName co "carol"') == set()
        assert await names('userName co "exa"') == {"bob@example.com"}
        assert await names('userName co "ex"') == {"bob@example.com"}  # short: scan
    finally:
        await store.close()
    conn = sqlite3.connect(str(tmp_path / "s.db"))
    try:
        for table, rows in (("user_name_search", 1), ("user_email_search", 0), ("user_display_search", 0),
                            ("user_external_search", 0)):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows, table
        plan = " ".join(r[3] for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT r.id FROM users r WHERE r.seq IN (SELECT rowid FROM user_name_search"
            " WHERE user_name_search MATCH ?) AND +r.tenant_id = ? AND instr(r.user_name_ci, ?) > 0 ORDER BY r.seq",
            ('"exa"', TENANT, "exa")))
        assert "INTEGER PRIMARY KEY" in plan and "VIRTUAL TABLE" in plan, plan  # driven by the index
    finally:
        conn.close()


async def test_migration_indexes_existing_rows(tmp_path: Path) -> None:
    """A database written before migration 0009 gets its rows indexed when the migration runs."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(str(path))
    from gateway.store.migrations import migration_scripts

    for version, script in migration_scripts("sqlite"):
        if version < 9:
            conn.executescript(script)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied TEXT)")
    conn.executemany("INSERT INTO schema_migrations VALUES (?, 'x')", [(v,) for v, _ in migration_scripts("sqlite") if v < 9])
    conn.execute("INSERT INTO tenants (id, name, scim_enabled, created) VALUES ('t', 't', 1, 'x')")
    conn.execute("INSERT INTO users (tenant_id, id, user_name, user_name_ci, data, created, last_modified)"
                 " VALUES ('t', 'u1', 'Old.User', 'old.user', '{\"userName\": \"Old.User\"}', 'x', 'x')")
    conn.execute("INSERT INTO user_emails (tenant_id, user_id, value_ci) VALUES ('t', 'u1', 'legacy@mail.example')")
    conn.commit()
    conn.close()
    store = SqliteStore(str(path))
    await store.open()
    try:
        svc = ScimService(store, base_url=lambda t: "https://x")
        async with store.read() as r:
            tenant = await r.get_tenant("t")
        assert tenant is not None
        for flt in ('userName co "D.US"', 'emails.value co "legacy@"'):
            page = await svc.search(tenant, user_type(), ListParams(filter=flt))
            assert page.body is not None and [x["id"] for x in page.body["Resources"]] == ["u1"], flt
    finally:
        await store.close()
