"""The change feed from real SCIM traffic, admin edits, mapping changes and SSO, on every backend."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from feed_kit import ADMIN, Feed

from gateway.events.feed import enforce_retention
from gateway.events.outbox import EVENT_TYPES

REPO = Path(__file__).resolve().parents[2]
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
EVENT_KEYS = {"id", "type", "tenant_id", "sequence", "occurred_at", "source", "client", "data"}
USER_KEYS = {"id", "userName", "externalId", "email", "givenName", "familyName", "active", "roles", "resource"}


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def set_mapping(feed: Feed, mapping: dict[str, Any]) -> None:
    status, body = await feed.admin("PATCH", "", {"role_mapping": mapping})
    assert status == 200, body


async def test_every_event_type_from_scim_traffic(feed: Feed) -> None:
    await set_mapping(feed, {"source": "idp_groups", "group_roles": {"Admins": ["admin"]}})
    s = feed.scim
    user = await s.create_user("ada@example.com", name={"givenName": "Ada", "familyName": "Lovelace"},
                               emails=[{"value": "ada@example.com", "primary": True}], externalId="ext-1",
                               password="hunter2-secret")
    uid = user["id"]
    assert (await s.patch(f"/Users/{uid}", [{"op": "replace", "path": "name.givenName", "value": "Augusta"}]))[0] == 200
    # a PATCH that changes nothing writes nothing
    assert (await s.patch(f"/Users/{uid}", [{"op": "replace", "path": "name.givenName", "value": "Augusta"}]))[0] == 200
    assert (await s.patch(f"/Users/{uid}", [{"op": "replace", "path": "active", "value": False}]))[0] == 200
    assert (await s.patch(f"/Users/{uid}", [{"op": "replace", "path": "active", "value": True}]))[0] == 200
    group = await s.create_group("Admins", [uid])
    gid = group["id"]
    assert (await s.patch(f"/Groups/{gid}", [{"op": "replace", "path": "displayName", "value": "Staff"}]))[0] in (200, 204)
    assert (await s.patch(f"/Groups/{gid}", [{"op": "remove", "path": f'members[value eq "{uid}"]'}]))[0] in (200, 204)
    assert (await s.delete(f"/Groups/{gid}"))[0] == 204
    assert (await s.delete(f"/Users/{uid}"))[0] == 204

    events = await feed.all_events()
    assert types(events) == [
        "user.created", "user.updated", "user.deactivated", "user.reactivated",
        "group.created", "group.member_added", "user.roles_changed",
        "group.updated", "user.roles_changed",
        "group.member_removed",
        "group.deleted", "user.deleted",
    ]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["id"] for e in events}) == len(events)
    for e in events:
        assert set(e) == EVENT_KEYS
        assert (e["tenant_id"], e["source"], e["client"]) == (feed.tenant_id, "scim", "generic")
        if e["type"].startswith("user."):
            assert USER_KEYS <= set(e["data"])
    assert "hunter2" not in json.dumps(events) and "password" not in json.dumps(events)
    created = events[0]["data"]
    assert {k: created[k] for k in USER_KEYS - {"resource"}} == {
        "id": uid, "userName": "ada@example.com", "externalId": "ext-1", "email": "ada@example.com",
        "givenName": "Ada", "familyName": "Lovelace", "active": True, "roles": []}
    assert created["resource"]["id"] == uid and created["resource"]["name"]["givenName"] == "Ada"
    assert events[1]["data"]["changed_attributes"] == ["name"] and events[1]["data"]["givenName"] == "Augusta"
    assert events[2]["data"]["active"] is False and events[2]["data"]["changed_attributes"] == ["active"]
    assert events[4]["data"] == {"id": gid, "displayName": "Admins", "externalId": None}
    assert events[5]["data"] == {"group_id": gid, "member_id": uid, "member_type": "User", "user_id": uid}
    assert (events[6]["data"]["roles"], events[6]["data"]["previous_roles"]) == (["admin"], [])
    assert events[7]["data"]["displayName"] == "Staff" and events[7]["data"]["changed_attributes"] == ["displayName"]
    assert (events[8]["data"]["roles"], events[8]["data"]["previous_roles"]) == ([], ["admin"])
    assert events[9]["data"]["user_id"] == uid
    assert events[10]["data"]["displayName"] == "Staff"
    assert events[11]["data"]["id"] == uid and events[11]["data"]["userName"] == "ada@example.com"


async def test_put_group_writes_only_the_net_membership_change(feed: Feed) -> None:
    s = feed.scim
    a, b, c = [(await s.create_user(n))["id"] for n in ("a", "b", "c")]
    group = await s.create_group("Team", [a, b])
    before = (await feed.page(limit="1000"))["next_cursor"]
    body = {"schemas": [GROUP], "displayName": "Team", "members": [{"value": b}, {"value": c}]}
    assert (await s.put(f"/Groups/{group['id']}", body))[0] == 200
    events = await feed.all_events(after=before)
    assert [(e["type"], e["data"].get("member_id")) for e in events] == [
        ("group.member_added", c), ("group.member_removed", a)]
    # re-adding a member writes nothing
    before = (await feed.page(limit="1000"))["next_cursor"]
    await s.patch(f"/Groups/{group['id']}", [{"op": "add", "path": "members", "value": [{"value": b}]}])
    assert await feed.all_events(after=before) == []


async def test_large_member_add_is_one_event_per_member(feed: Feed) -> None:
    s = feed.scim
    store = s.gateway.store
    from gateway.store.base import ResourceRow

    ids = [f"u{i:05d}" for i in range(1200)]
    async with store.write() as tx:
        for uid in ids:
            await tx.insert_user(feed.tenant_id, ResourceRow(id=uid, data={"userName": uid}, version=1,
                                                            created="2026-01-01T00:00:00.000000Z",
                                                            last_modified="2026-01-01T00:00:00.000000Z"))
    group = await s.create_group("Big")
    status, _, _ = await s.patch(f"/Groups/{group['id']}", [{"op": "add", "path": "members",
                                                              "value": [{"value": u} for u in ids]}])
    assert status in (200, 204)
    events = await feed.all_events(types="group.member_added", limit=500)
    assert [e["data"]["user_id"] for e in events] == ids


async def test_roles_changed_from_mapping_admin_and_sso(feed: Feed) -> None:
    s = feed.scim
    uid = (await s.create_user("bob", roles=[{"value": "Writer"}]))["id"]
    # a mapping change recomputes stored roles: source role_mapping
    await set_mapping(feed, {"source": "idp_attribute", "attribute": "roles"})
    # a portal edit: source admin
    await set_mapping(feed, {"source": "portal"})
    status, body = await feed.admin("PUT", f"/users/{uid}/roles", {"roles": ["Owner"]})
    assert status == 200, body
    # SSO with SCIM off: JIT create and re-sync, source sso
    assert (await feed.admin("PATCH", "", {"scim_enabled": False}))[0] == 200
    await set_mapping(feed, {"source": "idp_groups", "group_roles": {"Ops": ["operator"]}})
    for _ in range(2):
        status, body = await feed.admin("POST", "/sso/sign-in", {"userName": "carol", "groups": ["Ops"]})
        assert status == 200, body
    status, body = await feed.admin("POST", "/sso/sign-in", {"userName": "bob", "groups": ["Ops"]})
    assert status == 200 and body["roles"] == ["operator"]

    events = await feed.all_events()
    got = [(e["type"], e["source"], e["data"]["userName"], e["data"]["roles"], e["data"].get("previous_roles"))
           for e in events[1:]]
    assert got == [
        ("user.roles_changed", "role_mapping", "bob", ["Writer"], []),
        ("user.roles_changed", "admin", "bob", ["Owner"], ["Writer"]),
        ("user.created", "sso", "carol", ["operator"], None),
        ("user.roles_changed", "sso", "bob", ["operator"], ["Owner"]),
    ]
    assert all(e["client"] is None for e in events[1:])


async def test_rolled_back_write_writes_no_event(feed: Feed) -> None:
    s = feed.scim
    await s.create_user("dup")
    assert (await s.post("/Users", {"schemas": [USER], "userName": "DUP"}))[0] == 409

    async def explode(*_: Any) -> None:
        raise RuntimeError("listener failed after the events were buffered")

    listeners = s.gateway.service.listeners
    listeners.append(explode)
    try:
        status, _, _ = await s.post("/Users", {"schemas": [USER], "userName": "rolled-back"})
        assert status == 500
    finally:
        listeners.remove(explode)
    await s.create_user("after")
    events = await feed.all_events()
    assert [(e["type"], e["data"]["userName"], e["sequence"]) for e in events] == [
        ("user.created", "dup", 1), ("user.created", "after", 2)]


async def test_cursor_type_filter_and_bad_input(feed: Feed) -> None:
    s = feed.scim
    empty = await feed.page()
    assert empty["data"] == [] and empty["next_cursor"]
    for i in range(5):
        await s.create_user(f"p{i}")
    uid = (await s.create_user("p5"))["id"]
    await s.delete(f"/Users/{uid}")
    first = await feed.page(limit="2")
    second = await feed.page(limit="2", after=first["next_cursor"])
    rest = await feed.page(after=second["next_cursor"])
    seqs = [e["sequence"] for p in (first, second, rest) for e in p["data"]]
    assert seqs == list(range(1, 8))
    again = await feed.page(after=rest["next_cursor"])
    assert again["data"] == [] and again["next_cursor"] == rest["next_cursor"]
    deleted = await feed.page(type="user.deleted,group.deleted")
    assert types(deleted["data"]) == ["user.deleted"]
    # a filtered page that reached the end moves the cursor to the head: nothing is re-read
    assert (await feed.page(type="user.deleted", after=deleted["next_cursor"]))["data"] == []
    await s.create_user("p6")
    assert types((await feed.page(after=deleted["next_cursor"]))["data"]) == ["user.created"]
    for params, code in (({"limit": "0"}, "validation_error"), ({"limit": "1001"}, "validation_error"),
                         ({"limit": "x"}, "validation_error"), ({"type": "user.exploded"}, "validation_error"),
                         ({"after": "not-a-cursor"}, "invalid_cursor"), ({"after": "eyJlIjogOTk5fQ"}, "invalid_cursor")):
        status, body = await feed.admin("GET", "/events", params=params)
        assert (status, body["error"]) == (400, code), (params, body)
    status, body = await feed.admin("GET", "/events", token="wrong")
    assert status == 401


async def test_tenants_feeds_are_separate(feed: Feed) -> None:
    s = feed.scim
    other = await s.other_tenant()
    await s.create_user("mine")
    await other.create_user("theirs")
    mine = await feed.all_events()
    resp = await feed.http.get(f"/api/v1/tenants/{other.tenant.id}/events", headers={"Authorization": f"Bearer {ADMIN}"})
    theirs = (await resp.json())["data"]
    assert [e["data"]["userName"] for e in mine] == ["mine"]
    assert [(e["data"]["userName"], e["sequence"], e["tenant_id"]) for e in theirs] == [("theirs", 1, other.tenant.id)]
    resp = await feed.http.get("/api/v1/tenants/nope/events", headers={"Authorization": f"Bearer {ADMIN}"})
    assert resp.status == 404


async def test_retention_prunes_and_old_cursor_gets_410(feed: Feed) -> None:
    s = feed.scim
    gw = s.gateway
    await s.create_user("old1")
    start = (await feed.page())["next_cursor"]
    await s.create_user("old2")
    removed = await enforce_retention(gw.store, gw.settings, at=datetime.now(timezone.utc) + timedelta(days=31))
    assert removed == {feed.tenant_id: 2}
    status, body = await feed.admin("GET", "/events", params={"after": start})
    assert status == 410 and body["error"] == "cursor_expired"
    fresh = await feed.page()
    assert fresh["data"] == []
    await s.create_user("new")
    assert [e["data"]["userName"] for e in (await feed.page(after=fresh["next_cursor"]))["data"]] == ["new"]
    assert [e["sequence"] for e in (await feed.page())["data"]] == [3]
    # nothing younger than the retention period goes
    assert await enforce_retention(gw.store, gw.settings) == {}


async def test_events_switched_off_write_nothing(make_feed: Callable[..., Awaitable[Feed]]) -> None:
    feed = await make_feed("Off", events_enabled=False)
    await feed.scim.create_user("quiet")
    assert await feed.all_events() == []


async def test_catalogue_matches_the_docs() -> None:
    docs = (REPO / "docs" / "events.md").read_text()
    for t in EVENT_TYPES:
        assert f"### `{t}`" in docs, t


async def _session(feed: Feed, path: str, data: dict[str, str]) -> str:
    from http.cookies import SimpleCookie

    resp = await feed.http.post(path, data=data, headers={"Origin": "https://scim.example.test"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    for raw in resp.headers.getall("Set-Cookie", []):
        c: SimpleCookie = SimpleCookie()
        c.load(raw)
        for name, morsel in c.items():
            if "scimgw_portal" in name and morsel.value:
                feed.http.session.cookie_jar.clear()
                return f"{name}={morsel.value}"
    raise AssertionError("no session cookie")


async def test_events_api_takes_a_tenant_portal_session_webhooks_only_the_admin_token(feed: Feed) -> None:
    s = feed.scim
    other = await s.other_tenant()
    await s.create_user("visible")
    status, link = await feed.admin("POST", "/portal-links")
    assert status == 201, link
    cookie = await _session(feed, "/portal/link", {"token": link["url"].split("token=", 1)[1]})
    operator = await _session(feed, "/portal/login", {"token": ADMIN})

    async def call(method: str, path: str, who: str, body: Any = None) -> tuple[int, Any]:
        resp = await feed.http.request(method, f"/api/v1/tenants{path}", json=body,
                                       headers={"Cookie": who, "Origin": "https://scim.example.test"})
        out = await resp.json()
        feed.http.session.cookie_jar.clear()
        return resp.status, out

    status, page = await call("GET", f"/{feed.tenant_id}/events", cookie)
    assert status == 200 and [e["data"]["userName"] for e in page["data"]] == ["visible"]
    status, err = await call("GET", f"/{other.tenant.id}/events", cookie)
    assert status == 404  # another tenant is not there for this session
    for who, code in ((cookie, "operator_only"), (operator, "admin_token_required")):
        status, err = await call("POST", f"/{feed.tenant_id}/webhooks", who, {"url": "https://a.example/h"})
        assert (status, err["error"]) == (403, code)
        status, err = await call("GET", f"/{feed.tenant_id}/webhooks", who)
        assert (status, err["error"]) == (403, code)
