"""Webhooks: management, signatures, at-least-once ordered delivery with retries, several workers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from feed_kit import ADMIN, POSTGRES_DSN, Feed, feed_settings, feed_store

from gateway.app import create_app
from gateway.events.delivery import retry_delay
from gateway.settings import Settings
from gateway.testing import ScimClient, add_tenant
from gateway.webhooks import sign, signature, verify

FAST = {"webhook_delivery": True, "webhook_poll_seconds": 0.05, "webhook_retry_base_seconds": 0.05,
        "webhook_retry_factor": 2.0, "webhook_retry_max_seconds": 0.2, "webhook_timeout_seconds": 2.0}


class Receiver:
    """A real HTTP receiver on loopback; ``policy(n)`` gives the status of the n-th request (0-based)."""

    def __init__(self, policy: Callable[[int], int] = lambda n: 200) -> None:
        self.policy = policy
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.policy(len(self.requests))
        self.requests.append((status, dict(request.headers), body))
        return web.Response(status=status)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies of the requests answered 2xx, in arrival order."""
        return [json.loads(b) for s, _, b in self.requests if 200 <= s < 300]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.server.start_server()
    yield r
    await r.server.close()


async def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def settled_deliveries(feed: Feed, webhook_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The endpoint's deliveries once ``count`` of them exist and all have failed for good."""
    deadline = time.monotonic() + 30
    while True:
        page: list[dict[str, Any]] = (await feed.admin("GET", f"/webhooks/{webhook_id}/deliveries"))[1]["data"]
        if len(page) == count and all(d["status"] == "failed" for d in page):
            return page
        assert time.monotonic() < deadline, page
        await asyncio.sleep(0.05)


# signatures -------------------------------------------------------------------------------------
def test_verify_accepts_the_gateways_signature_and_rejects_everything_else() -> None:
    body = b'{"id": "evt_1"}'
    header = sign("whsec_a", body, timestamp=1_700_000_000)
    assert header == f"t=1700000000,v1={signature('whsec_a', body, 1_700_000_000)}"
    assert verify("whsec_a", header, body, now=1_700_000_100)
    assert verify("whsec_a", header, body.decode(), now=1_700_000_100)  # str bodies too
    assert not verify("whsec_b", header, body, now=1_700_000_100)  # wrong secret
    assert not verify("whsec_a", header, body + b" ", now=1_700_000_100)  # altered body
    assert not verify("whsec_a", header, body, now=1_700_000_301)  # stale: a replay
    assert not verify("whsec_a", header, body, now=1_699_999_000)  # from the future
    assert verify("whsec_a", header, body, tolerance_seconds=3600, now=1_700_003_000)
    for bad in (None, "", "v1=abc", "t=1700000000", "t=soon,v1=abc", "t=1700000000,v1=", "garbage"):
        assert not verify("whsec_a", bad, body, now=1_700_000_000), bad
    rotated = f"t=1700000000,v1={'0' * 64},v1={signature('whsec_a', body, 1_700_000_000)}"
    assert verify("whsec_a", rotated, body, now=1_700_000_000)


def test_retry_schedule_is_exponential_capped_and_jittered() -> None:
    s = Settings()
    import random

    rand = random.Random(7)
    delays = [retry_delay(s, n, rand=rand) for n in range(1, s.webhook_max_attempts)]
    nominal = [min(5 * 3 ** (n - 1), 21_600) for n in range(1, s.webhook_max_attempts)]
    assert all(0.75 * d <= got <= 1.25 * d for got, d in zip(delays, nominal))
    assert 3.75 <= delays[0] <= 6.25  # the first retry after a few seconds
    assert 0.7 * 86_400 < sum(nominal) < 1.3 * 86_400  # 12 attempts over about a day
    assert len({round(d, 6) for d in delays}) == len(delays)


# management ---------------------------------------------------------------------------------------
async def test_webhook_crud_rotate_and_validation(feed: Feed) -> None:
    status, created = await feed.admin("POST", "/webhooks", {"url": "https://app.example.com/hooks",
                                                               "events": ["user.deactivated"], "description": "sessions"})
    assert status == 201 and created["secret"].startswith("whsec_")
    wid = created["id"]
    assert (created["events"], created["all_events"], created["enabled"], created["failing"]) == (
        ["user.deactivated"], False, True, False)
    status, listed = await feed.admin("GET", "/webhooks")
    assert status == 200 and [w["id"] for w in listed["data"]] == [wid]
    assert created["secret"] not in json.dumps(listed)
    status, one = await feed.admin("GET", f"/webhooks/{wid}")
    assert status == 200 and "secret" not in one
    status, updated = await feed.admin("PATCH", f"/webhooks/{wid}", {"events": None, "enabled": False})
    assert status == 200 and updated["all_events"] and not updated["enabled"]
    status, rotated = await feed.admin("POST", f"/webhooks/{wid}/rotate-secret")
    assert status == 200 and rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    status, deliveries = await feed.admin("GET", f"/webhooks/{wid}/deliveries")
    assert status == 200 and deliveries == {"data": [], "next_cursor": None}
    for body in ({"url": "ftp://example.com/x"}, {"url": "http://"}, {"url": "https://user:pw@example.com/"},
                 {"url": "javascript:alert(1)"}, {"url": "http://example.com:99999/"}, {"url": "https://a b/"},
                 {"url": "https://example.com/#frag"}, {"url": "https://example.com/", "events": ["user.exploded"]},
                 {"url": "https://example.com/", "extra": 1}, {"url": 42}):
        status, err = await feed.admin("POST", "/webhooks", body)
        assert status == 400 and err["error"] == "validation_error", (body, err)
    status, err = await feed.admin("PATCH", f"/webhooks/{wid}", {"url": "gopher://x"})
    assert status == 400
    status, err = await feed.admin("POST", f"/webhooks/{wid}/deliveries/nope/retry")
    assert status == 404 and err["error"] == "not_found"
    status, err = await feed.admin("GET", "/webhooks", token="portal-session-or-wrong")
    assert status == 401
    other = await feed.scim.other_tenant()
    resp = await feed.http.get(f"/api/v1/tenants/{other.tenant.id}/webhooks/{wid}",
                               headers={"Authorization": f"Bearer {ADMIN}"})
    assert resp.status == 404  # another tenant's path never reaches this endpoint
    assert (await feed.admin("DELETE", f"/webhooks/{wid}"))[0] == 204
    assert (await feed.admin("GET", f"/webhooks/{wid}"))[0] == 404
    assert (await feed.admin("DELETE", f"/webhooks/{wid}"))[0] == 404


# delivery -----------------------------------------------------------------------------------------
async def test_flaky_receiver_gets_every_event_signed_in_order(
    make_feed: Callable[..., Awaitable[Feed]], receiver: Receiver
) -> None:
    receiver.policy = lambda n: 503 if n < 3 or n % 4 == 1 else 200  # the first attempts fail, then some more
    feed = await make_feed("Flaky", **FAST)
    status, hook = await feed.admin("POST", "/webhooks", {"url": receiver.url})
    assert status == 201
    s = feed.scim
    ids = [(await s.create_user(f"u{i}"))["id"] for i in range(4)]
    g = await s.create_group("Team", ids[:2])
    await s.patch(f"/Users/{ids[3]}", [{"op": "replace", "path": "active", "value": False}])
    await s.delete(f"/Groups/{g['id']}")
    events = await feed.all_events()
    await wait_for(lambda: len(receiver.delivered()) >= len(events))
    got = receiver.delivered()
    assert [e["sequence"] for e in got] == [e["sequence"] for e in events]  # in order, each once per success
    assert got == events  # the body is the events API's object
    for status_code, headers, body in receiver.requests:
        assert verify(hook["secret"], headers["Scim-Gateway-Signature"], body)
        event = json.loads(body)
        assert headers["Scim-Gateway-Event-Id"] == event["id"]
        assert headers["Scim-Gateway-Event-Type"] == event["type"]
        assert headers["Content-Type"] == "application/json"
    status, page = await feed.admin("GET", f"/webhooks/{hook['id']}/deliveries", params={"limit": "500"})
    assert {d["status"] for d in page["data"]} == {"succeeded"}
    first = next(d for d in page["data"] if d["sequence"] == 1)
    assert first["attempts"] == 4 and first["last_status"] == 200 and first["next_attempt_at"] is None


async def test_exhausted_delivery_fails_flags_endpoint_and_manual_retry_recovers(
    make_feed: Callable[..., Awaitable[Feed]], receiver: Receiver
) -> None:
    receiver.policy = lambda n: 500
    feed = await make_feed("Down", **{**FAST, "webhook_max_attempts": 3})
    status, hook = await feed.admin("POST", "/webhooks", {"url": receiver.url, "events": ["user.created"]})
    wid = hook["id"]
    await feed.scim.create_user("first")
    await feed.scim.create_user("second")

    async def deliveries() -> list[dict[str, Any]]:
        return (await feed.admin("GET", f"/webhooks/{wid}/deliveries"))[1]["data"]  # type: ignore[no-any-return]

    done = await settled_deliveries(feed, wid, count=2)
    assert [(d["attempts"], d["last_status"], d["last_error"]) for d in done] == [(3, 500, "HTTP 500")] * 2
    assert (await feed.admin("GET", f"/webhooks/{wid}"))[1]["failing"] is True
    assert len(receiver.requests) == 6
    # in order: the second event was attempted only after the first had failed for good
    seqs = [json.loads(b)["sequence"] for _, _, b in receiver.requests]
    assert seqs == sorted(seqs)

    receiver.policy = lambda n: 200
    oldest = done[-1]
    status, retried = await feed.admin("POST", f"/webhooks/{wid}/deliveries/{oldest['id']}/retry")
    assert status == 200 and retried["status"] == "pending" and retried["attempts"] == 0
    await wait_for(lambda: len(receiver.delivered()) == 1)
    await asyncio.sleep(0.2)
    view = await deliveries()
    assert next(d for d in view if d["id"] == oldest["id"])["status"] == "succeeded"
    assert (await feed.admin("GET", f"/webhooks/{wid}"))[1]["failing"] is False


async def test_unreachable_and_slow_receivers_are_retried_without_leaking_the_url(
    make_feed: Callable[..., Awaitable[Feed]], receiver: Receiver
) -> None:
    feed = await make_feed("Unreachable", **{**FAST, "webhook_max_attempts": 2, "webhook_timeout_seconds": 0.3})
    from gateway.testing import free_port

    dead = f"http://127.0.0.1:{free_port()}/hook?token=s3cr3t-in-query"
    status, hook = await feed.admin("POST", "/webhooks", {"url": dead})
    await feed.scim.create_user("nobody-listens")
    page = await settled_deliveries(feed, hook["id"])
    assert page[0]["last_error"].startswith("connection failed") and "s3cr3t" not in json.dumps(page)

    slow_app = web.Application()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(status=200)

    slow_app.router.add_post("/hook", slow)
    server = TestServer(slow_app, host="127.0.0.1")
    await server.start_server()
    try:
        status, hook2 = await feed.admin("POST", "/webhooks", {"url": str(server.make_url("/hook"))})
        await feed.scim.create_user("too-slow")
        page = await settled_deliveries(feed, hook2["id"])
        assert page[0]["last_error"] == "no response within 0.3 s" and page[0]["attempts"] == 2
    finally:
        await server.close()


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_DSN, reason="needs PostgreSQL: set SCIM_GATEWAY_TEST_POSTGRES")
async def test_two_gateways_on_one_postgres_deliver_each_event_once(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], receiver: Receiver
) -> None:
    schema = f"feed_{uuid.uuid4().hex[:12]}"
    settings = feed_settings(**{**FAST, "webhook_concurrency": 4})
    apps = [create_app(settings, store=feed_store("postgres", tmp_path, schema=schema, drop=(i == 0)))
            for i in range(2)]
    clients = [await aiohttp_client(app) for app in apps]
    tenant, key = await add_tenant(clients[0].app, "TwoWorkers")
    feeds = [Feed(ScimClient(c, tenant, key)) for c in clients]
    # several endpoints, so both workers have work at once
    hooks = [(await feeds[0].admin("POST", "/webhooks", {"url": receiver.url + f"?n={i}"}))[1] for i in range(3)]
    for i in range(30):
        await feeds[i % 2].scim.create_user(f"once-{i}")
    events = await feeds[0].all_events()
    await wait_for(lambda: len(receiver.requests) >= len(events) * len(hooks))
    await asyncio.sleep(0.5)  # anything extra would arrive now
    per_hook: dict[str, list[int]] = {}
    for _, headers, body in receiver.requests:
        sig_ok = [h for h in hooks if verify(h["secret"], headers["Scim-Gateway-Signature"], body)]
        assert len(sig_ok) == 1
        per_hook.setdefault(sig_ok[0]["id"], []).append(json.loads(body)["sequence"])
    expected = [e["sequence"] for e in events]
    assert {h: seqs for h, seqs in per_hook.items()} == {h["id"]: expected for h in hooks}
