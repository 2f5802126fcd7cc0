"""Bearer auth, tenant isolation, SCIM toggle, and the HTTP edge's error handling."""

from __future__ import annotations

from gateway.testing import USER_SCHEMA, ScimClient, add_tenant


async def _unauth(scim: ScimClient, headers: dict[str, str]) -> tuple[int, object, object]:
    resp = await scim.client.get(f"{scim.base}/Users", headers=headers)
    return resp.status, await resp.json(content_type=None), resp


async def test_auth_failures_are_identical_401s(scim: ScimClient) -> None:
    other = await scim.other_tenant()
    cases = {
        "missing": {},
        "malformed": {"Authorization": "Basic abc"},
        "empty bearer": {"Authorization": "Bearer "},
        "unknown": {"Authorization": "Bearer scimgw_nope"},
        "other tenant": {"Authorization": f"Bearer {other.key}"},
    }
    bodies = set()
    for name, headers in cases.items():
        status, body, resp = await _unauth(scim, headers)
        assert status == 401, name
        assert resp.headers["WWW-Authenticate"].startswith("Bearer"), name  # type: ignore[attr-defined]
        assert body["status"] == "401"  # type: ignore[index]
        bodies.add(body["detail"])  # type: ignore[index]
    assert len(bodies) == 1


async def test_auth_revoked_key_is_401(scim: ScimClient) -> None:
    from gateway.clock import now
    from gateway.identity.tenants import create_api_key

    second = await create_api_key(scim.gateway.store, scim.tenant.id, "second key")
    status, _, _ = await scim.get("/Users")
    assert status == 200
    keys = await _list_keys(scim)
    async with scim.gateway.store.write() as tx:
        await tx.revoke_api_key(scim.tenant.id, keys[0], now())
    status, revoked, resp = await scim.get("/Users")
    assert status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    _, unknown, _ = await scim.get("/Users", key="scimgw_" + "x" * 43)
    assert revoked == unknown  # a revoked key is told exactly what an unknown one is: nothing leaks
    status, _, _ = await scim.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                              "userName": "after-revoke@example.com"})
    assert status == 401
    status, body, _ = await scim.get("/Users", key=second.key)
    assert status == 200 and body["totalResults"] == 0  # the other key still works; the refused POST wrote nothing


async def _list_keys(scim: ScimClient) -> list[str]:
    async with scim.gateway.store.read() as r:
        return [k.id for k in await r.list_api_keys(scim.tenant.id)]


async def test_auth_tenant_isolation(scim: ScimClient) -> None:
    other = await scim.other_tenant("Tenant B")
    mine = await scim.create_user("shared-name@example.com")
    theirs = await other.create_user("shared-name@example.com")  # same userName in another tenant is fine
    assert (await other.get(f"/Users/{mine['id']}"))[0] == 404
    assert (await other.patch(f"/Users/{mine['id']}", [{"op": "replace", "path": "title", "value": "x"}]))[0] == 404
    assert (await other.delete(f"/Users/{mine['id']}"))[0] == 404
    status, body, _ = await other.get("/Users")
    assert [r["id"] for r in body["Resources"]] == [theirs["id"]]
    # my key on their URL: 401, not their data
    status, _, _ = await scim.client.get(f"{other.base}/Users", headers={"Authorization": f"Bearer {scim.key}"}), None, None
    assert status.status == 401  # type: ignore[attr-defined]
    g = await other.create_group("Theirs")
    status, err, _ = await scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                 "displayName": "Mine", "members": [{"value": theirs["id"]}]})
    assert status == 400  # another tenant's user can't become my member
    assert (await scim.get(f"/Groups/{g['id']}"))[0] == 404


async def test_scim_disabled_tenant_gets_403_and_keeps_data(scim: ScimClient) -> None:
    u = await scim.create_user("keep@example.com")
    async with scim.gateway.store.write() as tx:
        await tx.update_tenant(scim.tenant.id, scim_enabled=False)
    status, err, _ = await scim.get("/Users")
    assert status == 403 and "SCIM" in err["detail"] and err["status"] == "403"
    async with scim.gateway.store.write() as tx:
        await tx.update_tenant(scim.tenant.id, scim_enabled=True)
    status, got, _ = await scim.get(f"/Users/{u['id']}")
    assert status == 200 and got["userName"] == "keep@example.com"


async def test_edge_oversize_body_is_413(aiohttp_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gateway.testing import build_app

    client = await aiohttp_client(build_app(tmp_path / "g.db", max_body_bytes=2048))
    tenant, key = await add_tenant(client.app, "Small")
    big = {"schemas": [USER_SCHEMA], "userName": "big", "title": "x" * 5000}
    resp = await client.post(f"/scim/v2/{tenant.id}/Users", json=big, headers={"Authorization": f"Bearer {key}"})
    body = await resp.json(content_type=None)
    assert resp.status == 413 and body["status"] == "413"


async def test_edge_unexpected_error_is_500_with_request_id_and_no_trace(scim: ScimClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def boom(*a: object, **k: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(scim.gateway.service, "search", boom)
    status, err, resp = await scim.get("/Users")
    assert status == 500 and err["status"] == "500"
    assert resp.headers["X-Request-Id"] in err["detail"] and "secret internals" not in err["detail"]


async def test_edge_unknown_path_outside_scim_is_404(scim: ScimClient) -> None:
    resp = await scim.client.get("/nothing/here")
    assert resp.status == 404 and (await resp.json(content_type=None))["status"] == "404"


async def test_edge_one_log_line_per_request_without_secrets(scim: ScimClient) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "log@example.com", "password": "P@ssw0rd-123"})
    assert scim.key not in str(logs) and "P@ssw0rd-123" not in str(logs)
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["status"] == 201 and line["tenant"] == scim.tenant.id and line["client"] == "generic"
    assert line["method"] == "POST" and line["path"].endswith("/Users") and line["duration_ms"] >= 0


async def test_auth_key_last_used_is_recorded(scim: ScimClient) -> None:
    async with scim.gateway.store.read() as r:
        assert [k.last_used for k in await r.list_api_keys(scim.tenant.id)] == [None]
    assert (await scim.get("/Users"))[0] == 200
    await scim.gateway.flush_key_usage()  # the background task does this every few seconds
    async with scim.gateway.store.read() as r:
        (key,) = await r.list_api_keys(scim.tenant.id)
    assert key.last_used is not None and key.last_used.endswith("Z") and key.last_used >= key.created
