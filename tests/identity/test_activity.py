"""The activity log (R12): event types and fields, the debug toggle, redaction, atomicity, paging, retention."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.clock import format_time
from gateway.identity.activity import enforce_retention, redact
from gateway.settings import Settings
from gateway.testing import USER_SCHEMA, ScimClient
from gateway.types import Change
from identity_kit import ADMIN_TOKEN, OKTA_SAMPLES, Admin, Replay


async def test_activity_provision_and_deprovision_events_carry_email_and_status(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    okta = Replay(scim, OKTA_SAMPLES)
    await okta.send("05")  # create: 201
    uid = okta.captured["user_id"]
    await okta.send("11")  # PUT profile update: 200
    await okta.send("12")  # PATCH active=false
    await okta.send("13")  # reactivate
    await okta.send("17")  # group create
    await scim.delete(f"/Users/{uid}")
    events = await admin.events(tid)
    summary = [(e["type"], e["resource_type"], e["action"], e["status"]) for e in reversed(events)]
    assert summary == [
        ("scim_provision", "User", "created", 201),
        ("scim_provision", "User", "updated", 200),
        ("scim_deprovision", "User", "deactivated", 200),
        ("scim_provision", "User", "reactivated", 200),
        ("scim_provision", "Group", "created", 201),
        ("scim_deprovision", "User", "deleted", 204),
    ]
    user_events = [e for e in events if e["resource_type"] == "User"]
    assert {e["email"] for e in user_events} == {"test.user@okta.local"}
    assert all(e["userName"] == "test.user@okta.local" and e["resource_id"] == uid for e in user_events)
    assert events[1]["displayName"] == "Test SCIMv2"
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)  # newest first


async def test_activity_scim_error_has_status_scim_type_and_detail(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await scim.create_user("dup@example.com")
    status, _, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "DUP@example.com"})
    assert status == 409
    status, _, _ = await scim.get("/Users", params={"filter": "userName eq"})
    assert status == 400
    errors = await admin.events(tid, "scim_error")
    assert [(e["status"], e["scimType"], e["method"]) for e in errors] == [(400, "invalidFilter", "GET"),
                                                                          (409, "uniqueness", "POST")]
    assert all(e["detail"] for e in errors)
    assert errors[1]["request"]["userName"] == "DUP@example.com"
    assert await admin.events(tid, "scim_read") == []  # the toggle is off


async def test_activity_scim_read_only_while_toggle_is_on(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    u = await scim.create_user("reader@example.com")
    await scim.get(f"/Users/{u['id']}")
    assert await admin.events(tid, "scim_read") == []
    await admin.patch_tenant(tid, log_successful_events=True)
    scim.tenant.log_successful_events = True
    status, doc, _ = await scim.get(f"/Users/{u['id']}")
    await scim.patch(f"/Users/{u['id']}", [{"op": "replace", "path": "displayName", "value": "R"}])
    reads = await admin.events(tid, "scim_read")
    assert [(e["method"], e["status"]) for e in reads] == [("PATCH", 200), ("GET", 200)]
    assert reads[1]["response"] == doc and reads[1]["request"] is None
    assert reads[0]["request"]["Operations"][0]["value"] == "R" and reads[0]["response"]["displayName"] == "R"
    await admin.patch_tenant(tid, log_successful_events=False)
    await scim.get(f"/Users/{u['id']}")
    assert len(await admin.events(tid, "scim_read")) == 2


async def test_activity_no_secret_in_events_logs_or_error_bodies(
    scim: ScimClient, admin: Admin, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    tid = scim.tenant.id
    caplog.set_level(logging.INFO)
    await admin.patch_tenant(tid, log_successful_events=True)
    okta = Replay(scim, OKTA_SAMPLES)
    await okta.send("05")  # carries "password": "1mz050nq"
    uid = okta.captured["user_id"]
    await scim.patch(f"/Users/{uid}", [{"op": "replace", "path": "password", "value": "s3cret-Pa55"}])
    await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": f"x {scim.key}", "password": "other-Pa55"})
    await scim.put(f"/Users/{uid}", {"schemas": [USER_SCHEMA], "userName": "test.user@okta.local",
                                     "nickName": f"Bearer {scim.key}", "password": 123})
    status, err, _ = await scim.get("/Users", key="scimgw_wrong_key_value_1234567890")
    assert status == 401 and "scimgw_wrong" not in json.dumps(err)
    status, body = await admin.call("GET", "/tenants", token="wrong-admin-token")
    assert status == 401 and "wrong-admin-token" not in json.dumps(body) and ADMIN_TOKEN not in json.dumps(body)
    status, body = await admin.call("POST", f"/tenants/{tid}/api-keys", {"name": "k", "key": "scimgw_chosen_by_me"})
    assert status == 400 and "scimgw_chosen" not in json.dumps(body)
    status, created = await admin.call("POST", f"/tenants/{tid}/api-keys", {"name": "second"})
    assert status == 201
    await scim.gateway.activity.flush()  # request events are written after the response
    async with scim.gateway.store.read() as r:
        stored = json.dumps([e.data for e in await r.list_events(tid, limit=1000)])
    assert "[redacted]" in stored
    logs = caplog.text + "".join(capsys.readouterr())
    for secret in ("1mz050nq", "s3cret-Pa55", "other-Pa55", scim.key, created["key"], ADMIN_TOKEN, "wrong-admin-token"):
        assert secret not in stored, secret
        assert secret not in logs, secret


async def test_activity_never_records_a_change_that_rolled_back(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    gw = scim.gateway

    async def explode(tx: Any, tenant: Any, change: Change, context: dict[str, Any]) -> None:
        raise RuntimeError("crash after the event insert")

    gw.service.listeners.append(explode)  # runs after the activity listener has inserted its event
    status, body, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "ghost@example.com"})
    assert status == 500
    gw.service.listeners.remove(explode)
    assert await admin.users(tid) == {}
    events = await admin.events(tid)
    assert [e["type"] for e in events] == ["scim_error"]  # the failed request itself, nothing provisioned
    assert events[0]["status"] == 500


async def test_activity_api_filters_pages_and_validates(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    for i in range(5):
        await scim.create_user(f"p{i}@example.com")
    await scim.get("/Users", params={"filter": "bad filter"})
    status, page1 = await admin.call("GET", f"/tenants/{tid}/activity", params={"limit": "2", "type": "scim_provision"})
    assert status == 200 and [e["userName"] for e in page1["events"]] == ["p4@example.com", "p3@example.com"]
    status, page2 = await admin.call("GET", f"/tenants/{tid}/activity",
                                     params={"limit": "2", "type": "scim_provision", "cursor": page1["next_cursor"]})
    assert [e["userName"] for e in page2["events"]] == ["p2@example.com", "p1@example.com"]
    status, page3 = await admin.call("GET", f"/tenants/{tid}/activity",
                                     params={"limit": "2", "type": "scim_provision", "cursor": page2["next_cursor"]})
    assert [e["userName"] for e in page3["events"]] == ["p0@example.com"] and page3["next_cursor"] is None
    for params in ({"type": "nope"}, {"limit": "0"}, {"limit": "x"}, {"cursor": "!!"}):
        status, body = await admin.call("GET", f"/tenants/{tid}/activity", params=params)
        assert status == 400 and body["error"] in ("validation_error", "invalid_cursor"), params


async def test_activity_retention_by_age_and_count_with_tenant_override(scim: ScimClient, admin: Admin) -> None:
    gw = scim.gateway
    other = await scim.other_tenant("Other")
    old = format_time(datetime.now(timezone.utc) - timedelta(days=40))
    async with gw.store.write() as tx:
        for tenant_id in (scim.tenant.id, other.tenant.id):
            for i in range(3):
                await tx.insert_event(tenant_id, "scim_provision", old, {"n": i})
            for i in range(10):
                await tx.insert_event(tenant_id, "scim_provision", format_time(datetime.now(timezone.utc)), {"n": i})
    await admin.patch_tenant(other.tenant.id, activity_retention={"max_age_days": 30, "max_events": 4})
    settings = Settings(activity_max_age_days=90, activity_max_events=12)
    removed = await enforce_retention(gw.store, settings)
    assert removed == {scim.tenant.id: 1, other.tenant.id: 9}
    assert len(await admin.events(scim.tenant.id)) == 12
    kept = await admin.events(other.tenant.id)
    assert [e["n"] for e in kept] == [9, 8, 7, 6]
    status, t = await admin.call("GET", f"/tenants/{other.tenant.id}")
    assert t["activity_retention"] == {"max_age_days": 30, "max_events": 4}


def test_activity_redact_masks_names_and_embedded_keys() -> None:
    out = redact({"Password": "x", "urn:x:User:password": "y", "newPassword": "z", "client_secret": "s",
                  "note": "Authorization: Bearer abcdefghijkl", "list": [{"key": 1}, "scimgw_abcdefghijkl"],
                  "Operations": [{"op": "replace", "path": "urn:x:User:password", "value": "p"}]})
    assert out == {"Password": "[redacted]", "urn:x:User:password": "[redacted]", "newPassword": "[redacted]",
                   "client_secret": "[redacted]", "note": "Authorization: [redacted]",
                   "list": [{"key": "[redacted]"}, "[redacted]"],
                   "Operations": [{"op": "replace", "path": "urn:x:User:password", "value": "[redacted]"}]}


ENTRA_UA = {"User-Agent": "Microsoft Azure AD SCIM provisioning"}


async def test_activity_scim_read_keeps_what_the_idp_sent_beside_what_the_plugin_made_of_it(
    scim: ScimClient, admin: Admin
) -> None:
    """Entra's ``"active": "True"`` is stored in the event as sent; the normalised body shows ``true``."""
    tid = scim.tenant.id
    await admin.patch_tenant(tid, log_successful_events=True)
    body = {"schemas": [USER_SCHEMA], "userName": "raw@contoso.com", "active": "True"}
    status, doc, _ = await scim.post("/Users", body, headers=ENTRA_UA)
    assert status == 201 and doc["active"] is True
    status, _, _ = await scim.get("/Users", headers=ENTRA_UA, params={"filter": "userName eq raw@contoso.com"})
    assert status == 200
    reads = await admin.events(tid, "scim_read")
    get, post = reads[0], reads[1]
    assert post["client"] == "entra"
    assert post["request"]["active"] == "True"  # exactly what the IdP sent
    assert post["request_normalized"]["active"] is True  # what the Entra plugin made of it
    assert urllib.parse.parse_qs(get["query"]) == {"filter": ["userName eq raw@contoso.com"]}  # as sent
    assert get["query_normalized"]["filter"] == 'userName eq "raw@contoso.com"'  # Entra's unquoted value, quoted


async def test_activity_scim_error_records_a_non_json_body_as_text(scim: ScimClient, admin: Admin) -> None:
    status, _, _ = await scim.request("POST", "/Users", raw='{"userName": "half')
    assert status == 400
    (event,) = await admin.events(scim.tenant.id, "scim_error")
    assert event["request"] == '{"userName": "half' and "request_normalized" not in event
    status, _, _ = await scim.request("POST", "/Users", raw='{"userName": "a", "password": "Hunter2-x", "x": [')
    assert status == 400
    event = (await admin.events(scim.tenant.id, "scim_error"))[0]
    assert "Hunter2-x" not in json.dumps(event) and '"userName": "a"' in event["request"]


class _GatedStore:
    """A store whose write transactions wait for ``gate`` (or fail when ``fail`` is set)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.gate = asyncio.Event()
        self.fail = False

    def write(self) -> Any:
        outer = self

        class _Tx:
            async def __aenter__(self) -> Any:
                await outer.gate.wait()
                if outer.fail:
                    raise RuntimeError("activity store unavailable")
                self.cm = outer.real.write()
                return await self.cm.__aenter__()

            async def __aexit__(self, *exc: Any) -> Any:
                return await self.cm.__aexit__(*exc)

        return _Tx()


async def test_activity_write_never_delays_or_fails_the_scim_answer(scim: ScimClient, admin: Admin) -> None:
    tid = scim.tenant.id
    await admin.patch_tenant(tid, log_successful_events=True)
    writer = scim.gateway.activity
    gated = _GatedStore(writer.store)
    writer.store = gated
    # The activity transaction is blocked: the answers still arrive (a hang here is the defect).
    status, _, _ = await asyncio.wait_for(scim.post("/Users", {"schemas": [USER_SCHEMA]}), timeout=30)
    assert status == 400
    status, _, _ = await asyncio.wait_for(scim.get("/Users"), timeout=30)
    assert status == 200
    gated.gate.set()
    await writer.flush()
    assert [e["status"] for e in await admin.events(tid)] == [200, 400]
    # The activity store fails outright: the SCIM answer is still the normal one.
    gated.fail = True
    status, _, _ = await scim.get("/Users")
    assert status == 200
    await writer.flush()
    assert len(await admin.events(tid)) == 2
