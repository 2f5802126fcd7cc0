"""The Activity tab's connection health over real HTTP on every backend: the 24 hourly buckets behind its chart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.clock import format_time
from gateway.identity import management
from gateway.store import Store
from portal_kit import TOKEN, Http


async def test_activity_health_hourly_buckets_count_successes_and_errors_per_utc_hour(
        http: Http, unopened_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    tid = (await http.tenant("Acme"))["id"]
    other = (await http.tenant("Other"))["id"]
    at = datetime(2026, 3, 10, 14, 25, 7, tzinfo=timezone.utc)  # the current hour is 14:00, partial
    monkeypatch.setattr(management, "_utc_now", lambda: at)

    def t(hours_ago: int, minute: int) -> str:
        return format_time(at.replace(minute=minute, second=0) - timedelta(hours=hours_ago))

    placed = [  # (hours before the current hour, minute, type)
        (0, 0, "scim_provision"), (0, 25, "scim_error"), (0, 20, "scim_read"),
        (3, 59, "scim_error"), (3, 0, "scim_error"), (3, 30, "scim_deprovision"),
        (23, 0, "scim_provision"), (23, 1, "scim_error"),
        (24, 59, "scim_error"),  # the hour before the window: in no bucket
    ]
    async with unopened_store.write() as tx:
        for hours_ago, minute, kind in placed:
            await tx.insert_event(tid, kind, t(hours_ago, minute), {})
        await tx.insert_event(other, "scim_error", t(0, 1), {})  # another tenant's: never counted
        await tx.insert_event(tid, "scim_error", format_time(at + timedelta(hours=1)), {})  # after now: in no bucket
    status, body = await http.api("GET", f"/tenants/{tid}/activity/health", token=TOKEN)
    assert status == 200
    hourly = body["hourly"]
    assert [b["hour"] for b in hourly] == [
        (at.replace(minute=0, second=0) - timedelta(hours=23 - i)).strftime("%Y-%m-%dT%H:00:00Z") for i in range(24)]
    assert hourly[0]["hour"] == "2026-03-09T15:00:00Z" and hourly[-1]["hour"] == "2026-03-10T14:00:00Z"
    got = {b["hour"]: (b["successful"], b["errors"]) for b in hourly if b["successful"] or b["errors"]}
    assert got == {"2026-03-10T14:00:00Z": (2, 1), "2026-03-10T11:00:00Z": (1, 2), "2026-03-09T15:00:00Z": (1, 1)}
    # The existing fields keep their meaning: errors since 14:25 yesterday (so 14:59 yesterday too, and the
    # one after now), the other tenant's never.
    assert body["errors_24h"] == 6 and body["last_error"] == format_time(at + timedelta(hours=1))
    assert set(body) == {"last_request", "errors_24h", "last_error", "hourly"}

    status, body = await http.api("GET", f"/tenants/{other}/activity/health", token=TOKEN)
    assert status == 200 and body["errors_24h"] == 1
    assert [(b["successful"], b["errors"]) for b in body["hourly"]] == [(0, 0)] * 23 + [(0, 1)]
    status, body = await http.api("GET", "/tenants/nope/activity/health", token=TOKEN)
    assert status == 404 and body["error"] == "not_found"
