"""/healthz, /readyz, /metrics, tenant deletion over the admin API, and 405 for a known path's unknown method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.http.appkeys import gateway_key, metrics_key
from gateway.testing import ScimClient, build_app

TOKEN = "adm_ops_test_" + "q" * 40
Client = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def gateway_app(gateway_database: str, gateway_plugins: list[Any]) -> web.Application:
    return build_app(gateway_database, plugins=gateway_plugins, admin_token=TOKEN)


def samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(page: str, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples(page).items() if n == name and labels.items() <= dict(ls).items())


async def test_healthz_and_readyz(scim: ScimClient) -> None:
    r = await scim.client.get("/healthz")
    assert r.status == 200 and await r.json() == {"status": "ok"}
    r = await scim.client.get("/readyz")
    assert r.status == 200 and await r.json() == {"status": "ready"}


async def test_readyz_reports_pending_migrations_and_a_dead_database(scim: ScimClient) -> None:
    store = scim.gateway.store
    async with store.read() as r:
        latest = max(await r.schema_versions())
    async with store.write() as tx:
        await tx.conn.execute("DELETE FROM schema_migrations WHERE version = ?", (latest,))
    r = await scim.client.get("/readyz")
    assert r.status == 503 and await r.json() == {"status": "unavailable", "detail": f"migrations pending: {latest}"}
    async with store.write() as tx:
        await tx.conn.execute("INSERT INTO schema_migrations VALUES (?, 'restored')", (latest,))
    assert (await scim.client.get("/readyz")).status == 200
    await store.close()  # the database is gone from under the app
    r = await scim.client.get("/readyz")
    assert r.status == 503 and "database error" in (await r.json())["detail"]
    assert (await scim.client.get("/healthz")).status == 200  # liveness does no I/O
    await store.open()
    assert (await scim.client.get("/readyz")).status == 200


async def test_probes_stay_out_of_the_request_log(scim: ScimClient, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.logging import configure

    configure(json=True, level="INFO", cache=False)
    capsys.readouterr()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await scim.client.get(path)).status == 200
    await scim.get("/Users")
    captured = capsys.readouterr()
    lines = [json.loads(x) for x in (captured.err + captured.out).splitlines() if x.startswith("{")]
    assert [e["path"] for e in lines if e.get("event") == "request"] == [scim.base + "/Users"]


async def test_metrics_page_counts_by_template_without_tenant_or_user_data(scim: ScimClient) -> None:
    user = await scim.create_user("metrics.person@example.com")
    assert (await scim.get(f"/Users/{user['id']}"))[0] == 200
    assert (await scim.get("/Users/does-not-exist"))[0] == 404
    assert (await scim.get("/Users", key="scimgw_wrong"))[0] == 401
    assert (await scim.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                       "userName": "metrics.person@example.com"}))[0] == 409
    r = await scim.client.get("/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    page = await r.text()
    route = "/scim/v2/{tenant_id}/Users/{id}"
    assert value(page, "scim_gateway_http_requests_total", route=route, method="GET", status="2xx") == 1
    assert value(page, "scim_gateway_http_requests_total", route=route, method="GET", status="4xx") == 1
    assert value(page, "scim_gateway_http_request_duration_seconds_count", route=route, method="GET") == 2
    assert value(page, "scim_gateway_scim_errors_total", scim_type="uniqueness", status="409") == 1
    assert value(page, "scim_gateway_auth_failures_total", api="scim") == 1
    assert value(page, "scim_gateway_db_duration_seconds_count", kind="write") >= 1
    assert value(page, "scim_gateway_db_duration_seconds_count", kind="read") >= 2
    assert value(page, "scim_gateway_backlog", queue="activity") >= 1  # the create's scim_provision event
    idps = {dict(ls).get("idp") for (n, ls) in samples(page) if n == "scim_gateway_http_requests_total"}
    assert "generic" in idps or "okta" in idps or "entra" in idps
    assert scim.tenant.id not in page and user["id"] not in page and "metrics.person" not in page


async def test_metrics_registry_is_per_app_and_rate_limits_are_countable(aiohttp_client: Client, tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    one, two = build_app(tmp_path / "a.db"), build_app(tmp_path / "b.db")
    assert one[metrics_key].registry is not two[metrics_key].registry is not REGISTRY
    one[metrics_key].count_rate_limited("key")
    c1, c2 = await aiohttp_client(one), await aiohttp_client(two)
    assert value(await (await c1.get("/metrics")).text(), "scim_gateway_rate_limited_total", scope="key") == 1
    assert value(await (await c2.get("/metrics")).text(), "scim_gateway_rate_limited_total", scope="key") == 0


async def test_metrics_token_and_tenant_label(aiohttp_client: Client, tmp_path: Path) -> None:
    from gateway.testing import add_tenant

    app = build_app(tmp_path / "m.db", metrics_token="mtok_" + "k" * 30, metrics_tenant_label=True)
    client = await aiohttp_client(app)
    tenant, key = await add_tenant(app, "Labelled")
    await client.get(f"/scim/v2/{tenant.id}/Users", headers={"Authorization": f"Bearer {key}"})
    r = await client.get("/metrics")
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    r = await client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert r.status == 401
    r = await client.get("/metrics", headers={"Authorization": "Bearer mtok_" + "k" * 30})
    page = await r.text()
    assert r.status == 200
    assert value(page, "scim_gateway_http_requests_total", tenant=tenant.id) == 1
    assert value(page, "scim_gateway_auth_failures_total", api="metrics") == 2


async def test_metrics_disabled(aiohttp_client: Client, tmp_path: Path) -> None:
    app = build_app(tmp_path / "off.db", metrics_enabled=False)
    client = await aiohttp_client(app)
    assert (await client.get("/metrics")).status == 404
    assert app[gateway_key].store.on_timing is None


async def test_admin_delete_tenant_removes_everything_and_keys_stop(scim: ScimClient) -> None:
    user = await scim.create_user("gone@example.com", emails=[{"value": "gone@example.com", "primary": True}])
    await scim.create_group("Doomed", members=[user["id"]])
    other = await scim.other_tenant("Survivor")
    await other.create_user("stays@example.com")
    h = {"Authorization": f"Bearer {TOKEN}"}
    r = await scim.client.delete(f"/api/v1/tenants/{scim.tenant.id}", headers=h)
    body = await r.json()
    assert r.status == 200 and body["id"] == scim.tenant.id and body["deleted"] is True
    removed = body["removed"]
    assert removed["tenants"] == 1 and removed["users"] == 1 and removed["groups"] == 1
    assert removed["group_members"] == 1 and removed["api_keys"] == 1 and removed["activity"] >= 2
    assert (await scim.get("/Users"))[0] == 401  # its key stopped at once
    r = await scim.client.delete(f"/api/v1/tenants/{scim.tenant.id}", headers=h)
    assert r.status == 404 and (await r.json())["error"] == "not_found"
    status, page, _ = await other.get("/Users")
    assert status == 200 and page["totalResults"] == 1


async def test_unknown_method_on_a_known_path_is_405(scim: ScimClient) -> None:
    r = await scim.client.put(f"/api/v1/tenants/{scim.tenant.id}", headers={"Authorization": f"Bearer {TOKEN}"}, data="{}")
    assert r.status == 405 and set(r.headers["Allow"].split(", ")) >= {"GET", "PATCH", "DELETE"}
    assert (await r.json())["error"] == "method_not_allowed"
    assert (await scim.client.get("/api/v1/nothing-here")).status == 404


def test_cli_tenants_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    db = str(tmp_path / "cli.db")
    assert main(["--database", db, "tenants", "create", "Acme", "--json"]) == 0
    t = json.loads(capsys.readouterr().out)
    assert main(["--database", db, "keys", "create", t["id"], "--name", "k"]) == 0
    capsys.readouterr()
    assert main(["--database", db, "tenants", "delete", t["id"]]) == 2  # --yes is required
    assert "--yes" in capsys.readouterr().err
    assert main(["--database", db, "tenants", "delete", t["id"], "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"deleted tenant {t['id']}: removed 1 api_keys")
    assert main(["--database", db, "tenants", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
