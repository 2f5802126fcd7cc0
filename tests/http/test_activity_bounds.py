"""The activity log stays bounded and clean: capped payloads with a cut marker, retention by size,
and no secret from a filter, a query string or a URL path in an event or the request log line."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp import web

from gateway.identity.activity import enforce_retention
from gateway.testing import USER_SCHEMA, ScimClient


@pytest.fixture
def gateway_app(backend_app: web.Application) -> web.Application:
    return backend_app


async def _events(scim: ScimClient, type: str | None = None) -> list[Any]:
    await scim.gateway.activity.flush()  # request events are written after the response
    async with scim.gateway.store.read() as r:
        return list(await r.list_events(scim.tenant.id, type=type, limit=100))


async def _debug_on(scim: ScimClient) -> None:
    async with scim.gateway.store.write() as tx:
        await tx.update_tenant(scim.tenant.id, log_successful_events=True)


async def test_failing_big_request_stores_a_capped_payload(scim: ScimClient) -> None:
    big = {"schemas": [USER_SCHEMA], "userName": 12345, "title": "x" * 900_000}  # fails: userName not a string
    status, _, _ = await scim.post("/Users", big)
    assert status == 400
    [event] = await _events(scim, "scim_error")
    stored = len(json.dumps(event.data))
    limit = scim.gateway.settings.activity_max_payload_bytes
    assert stored < limit + 4096  # was 1.12 MB per failing 1 MiB request
    req = event.data["request"]
    assert req["truncated"] is True and req["original_bytes"] > 900_000
    assert req["cut_bytes"] == req["original_bytes"] - limit and len(req["head"].encode()) <= limit


async def test_small_payloads_are_stored_whole(scim: ScimClient) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": 5}
    await scim.post("/Users", body)
    [event] = await _events(scim, "scim_error")
    assert event.data["request"] == body


async def test_retention_by_size_keeps_the_newest_events(scim: ScimClient) -> None:
    for i in range(30):
        await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": i, "title": "t" * 2000})
    before = await _events(scim, "scim_error")
    assert len(before) == 30
    settings = scim.gateway.settings.model_copy(update={"activity_max_bytes": 20_000})
    removed = await enforce_retention(scim.gateway.store, settings)
    after = await _events(scim, "scim_error")
    assert removed[scim.tenant.id] == 30 - len(after) and 0 < len(after) < 30
    assert sum(len(json.dumps(e.data)) for e in after) <= 20_000 * 1.1
    assert [e.seq for e in after] == [e.seq for e in before[: len(after)]]  # newest first, the newest kept


async def test_secret_in_search_filter_never_reaches_an_event(scim: ScimClient) -> None:
    await _debug_on(scim)
    status, _, _ = await scim.post("/Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                                        "filter": 'userName eq "a" and password eq "hunter2-secret"'})
    assert status == 200
    status, _, _ = await scim.get("/Users", params={"filter": 'password eq "hunter3-secret"'})
    assert status == 200
    events = await _events(scim, "scim_read")
    text = json.dumps([e.data for e in events])
    assert len(events) == 2 and "hunter2-secret" not in text and "hunter3-secret" not in text
    assert 'password eq \\"[redacted]\\"' in text and 'userName eq \\"a\\"' in text  # the rest stays readable
    assert any(unquote(e.data.get("query", "")) == 'filter=password eq "[redacted]"' for e in events)


async def test_key_in_path_or_query_never_reaches_an_event(scim: ScimClient) -> None:
    await scim.get(f"/Users/{scim.key}", params={"note": scim.key})
    text = json.dumps([e.data for e in await _events(scim)])
    assert scim.key not in text and "[redacted]" in text
