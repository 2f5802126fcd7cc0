"""The webhook delivery worker: every gateway process runs one; they share the work through the database.

Each round it (1) fans out: for every enabled endpoint behind its tenant's feed, turns the next
committed events into ``pending`` delivery rows and advances the endpoint's cursor, in one
transaction; (2) claims, in one short transaction, the due *head* delivery of up to
``webhook_concurrency`` endpoints (the pending delivery with the lowest sequence of its endpoint, so
an endpoint receives its events in sequence order) by writing a lease on it (PostgreSQL: ``FOR
UPDATE SKIP LOCKED``, so concurrent claimers pass each other by); (3) POSTs them, and (4) records
each outcome only while still holding the lease.

At least once: a delivery row exists for every matching committed event (fan-out commits the rows
and the cursor together), and a row leaves ``pending`` only after a 2xx has been received or the
attempts are used up. A process killed mid-attempt leaves the row pending with a lease that runs
out, and another attempt follows; so a receiver may see an event twice (de-duplicate on
``Scim-Gateway-Event-Id``), never zero times.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta, timezone
import aiohttp
import orjson
import structlog

from gateway.clock import format_time, now
from gateway.events.outbox import event_body
from gateway.settings import Settings
from gateway.store.base import DeliveryRow, OutboxEvent, Store, WebhookRow
from gateway.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign

log = structlog.get_logger("scim_gateway.webhooks")
FAN_OUT_BATCH = 1000
USER_AGENT = "scim-gateway-webhooks/1"


def _later(seconds: float) -> str:
    return format_time(datetime.now(timezone.utc) + timedelta(seconds=seconds))


def retry_delay(settings: Settings, attempts: int, *, rand: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: exponential, capped, with ±25% jitter."""
    base = settings.webhook_retry_base_seconds * settings.webhook_retry_factor ** max(0, attempts - 1)
    delay = min(base, settings.webhook_retry_max_seconds)
    return delay * (rand or random).uniform(0.75, 1.25)


class DeliveryWorker:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        """Forever: deliver what is due, sleep ``webhook_poll_seconds`` when there is nothing to do."""
        try:
            while True:
                try:
                    busy = await self.step()
                except Exception:  # a database hiccup: try again next round
                    log.exception("webhook_round_failed")
                    busy = 0
                if not busy:
                    await asyncio.sleep(self.settings.webhook_poll_seconds)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.webhook_concurrency * 2),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def step(self) -> int:
        """One round: fan out, claim, attempt; returns the number of attempts made."""
        await self.fan_out()
        claimed = await self.claim()
        if claimed:
            await asyncio.gather(*(self.attempt(*c) for c in claimed))
        return len(claimed)

    async def fan_out(self) -> None:
        async with self.store.read() as r:
            behind = await r.webhooks_behind()
        for tenant_id, webhook_id in behind:
            while True:
                async with self.store.write() as tx:
                    n = await tx.fan_out(tenant_id, webhook_id, when=now(), new_id=lambda: f"dlv_{uuid.uuid4().hex}",
                                         limit=FAN_OUT_BATCH)
                if n < FAN_OUT_BATCH:
                    break

    async def claim(self) -> list[tuple[DeliveryRow, WebhookRow | None, OutboxEvent | None]]:
        timeout = self.settings.webhook_timeout_seconds
        token = uuid.uuid4().hex
        out: list[tuple[DeliveryRow, WebhookRow | None, OutboxEvent | None]] = []
        async with self.store.write() as tx:
            rows = await tx.claim_deliveries(when=now(), lease_until=_later(timeout + max(5.0, timeout)), token=token,
                                             limit=self.settings.webhook_concurrency)
            for d in rows:
                out.append((d, await tx.get_webhook(d.tenant_id, d.endpoint_id),
                            await tx.outbox_event(d.tenant_id, d.event_seq)))
        return out

    async def attempt(self, d: DeliveryRow, w: WebhookRow | None, e: OutboxEvent | None) -> None:
        status: int | None = None
        error: str | None = None
        if w is None or e is None:
            await self._finish(d, w, final=True, status=None, error="the event was removed by retention")
            return
        body = orjson.dumps(event_body(e))
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: e.id,
            EVENT_TYPE_HEADER: e.type,
            SIGNATURE_HEADER: sign(w.secret, body),
            "Scim-Gateway-Delivery-Id": d.id,
            "Scim-Gateway-Delivery-Attempt": str(d.attempts),
        }
        try:
            async with self._http().post(w.url, data=body, headers=headers, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds)) as resp:
                status = resp.status
                await resp.content.read(4096)  # drain a little so the connection can be reused
        except asyncio.TimeoutError:
            error = f"no response within {self.settings.webhook_timeout_seconds:g} s"
        except aiohttp.ClientError as exc:
            # The exception's text can quote the URL (and a token in its query): name the failure only.
            error = f"connection failed ({type(exc).__name__})"
        ok = status is not None and 200 <= status < 300
        if status is not None and not ok:
            error = f"HTTP {status}"
        final = ok or d.attempts >= self.settings.webhook_max_attempts
        await self._finish(d, w, final=final, status=status, error=None if ok else error, ok=ok)

    async def _finish(self, d: DeliveryRow, w: WebhookRow | None, *, final: bool, status: int | None,
                      error: str | None, ok: bool = False) -> None:
        when = now()
        new_status = "succeeded" if ok else ("failed" if final else "pending")
        nxt = None if final else _later(retry_delay(self.settings, d.attempts))
        async with self.store.write() as tx:
            recorded = await tx.finish_delivery(d.id, d.lease_token or "", status=new_status, when=when,
                                                next_attempt_at=nxt, http_status=status, error=error)
            # A final failure flags the endpoint; its next success clears the flag.
            if recorded and w is not None and ((ok and w.failing) or (new_status == "failed" and not w.failing)):
                await tx.update_webhook(d.tenant_id, d.endpoint_id, failing=not ok)
        if not recorded:
            log.info("webhook_attempt_superseded", delivery=d.id)  # lease lost (manual retry): attempt again later
        elif new_status == "failed":
            log.warning("webhook_delivery_failed", tenant=d.tenant_id, webhook=d.endpoint_id, delivery=d.id,
                        attempts=d.attempts, error=error)


async def deliver_now(store: Store, settings: Settings) -> int:
    """Run rounds until nothing is due (tests and the CLI's one-shot delivery); returns attempts made."""
    worker = DeliveryWorker(store, settings)
    total = 0
    try:
        while n := await worker.step():
            total += n
    finally:
        await worker.close()
    return total


__all__ = ["DeliveryWorker", "deliver_now", "retry_delay"]
