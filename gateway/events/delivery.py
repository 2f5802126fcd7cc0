"""The webhook delivery worker: every gateway process runs one; they share the work through the database.

Each round it (1) fans out: for every enabled endpoint behind its tenant's feed, turns the next
committed events into ``pending`` delivery rows and advances the endpoint's cursor, in one
transaction; (2) claims, in one short transaction, the due *head* delivery of up to
``webhook_concurrency`` endpoints (the pending delivery with the lowest sequence of its endpoint)
with the contiguous pending deliveries after it, by writing a lease on them (PostgreSQL: ``FOR
UPDATE SKIP LOCKED`` on the heads, so concurrent claimers pass each other by; while a head is
leased nothing else of its endpoint can be claimed); (3) POSTs each endpoint's batch one event at
a time, in sequence order, stopping at the first failure; and (4) records outcomes only while
still holding the lease, successes together every ``FLUSH_SECONDS`` (renewing the rest's leases).

At least once: a delivery row exists for every matching committed event (fan-out commits the rows
and the cursor together), and a row leaves ``pending`` only after a 2xx has been received or the
attempts are used up. A process killed mid-batch leaves its rows pending (those answered 2xx but
not yet recorded included) with leases that run out, and another attempt follows; so a receiver may see an event twice (de-duplicate on
``Scim-Gateway-Event-Id``), never zero times.
"""

from __future__ import annotations

import asyncio
import random
import time
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
Attempt = tuple[DeliveryRow, "WebhookRow | None", "OutboxEvent | None"]
FAN_OUT_BATCH = 1000
CLAIM_BATCH = 100  # deliveries of one endpoint claimed together (sent one after another, in order)
FLUSH_SECONDS = 0.2  # successes are recorded at least this often while a batch is being sent
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

    def _lease(self) -> str:
        timeout = self.settings.webhook_timeout_seconds
        return _later(timeout + max(5.0, timeout))

    async def step(self) -> int:
        """One round: fan out, claim, attempt; returns the number of attempts made."""
        await self.fan_out()
        batches = await self.claim()
        if not batches:
            return 0
        done = await asyncio.gather(*(self.run_batch(token, batch) for token, batch in batches))
        return sum(done)

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

    async def claim(self) -> list[tuple[str, list[Attempt]]]:
        """Lease due deliveries: per endpoint, its head and the contiguous pending ones after it."""
        token = uuid.uuid4().hex
        async with self.store.write() as tx:
            rows = await tx.claim_deliveries(when=now(), lease_until=self._lease(), token=token,
                                             limit=self.settings.webhook_concurrency, batch=CLAIM_BATCH)
            hooks: dict[str, WebhookRow | None] = {}
            wanted: dict[str, list[int]] = {}
            for d in rows:
                if d.endpoint_id not in hooks:
                    hooks[d.endpoint_id] = await tx.get_webhook(d.tenant_id, d.endpoint_id)
                wanted.setdefault(d.tenant_id, []).append(d.event_seq)
            events = {tid: await tx.outbox_events(tid, seqs) for tid, seqs in wanted.items()}
        by_endpoint: dict[str, list[Attempt]] = {}
        for d in rows:
            by_endpoint.setdefault(d.endpoint_id, []).append((d, hooks[d.endpoint_id], events[d.tenant_id].get(d.event_seq)))
        return [(token, batch) for batch in by_endpoint.values()]

    async def send(self, d: DeliveryRow, w: WebhookRow, e: OutboxEvent) -> tuple[bool, int | None, str | None]:
        """POST one event; (2xx?, HTTP status or None, error text or None)."""
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
            return False, None, f"no response within {self.settings.webhook_timeout_seconds:g} s"
        except aiohttp.ClientError as exc:
            # The exception's text can quote the URL (and a token in its query): name the failure only.
            return False, None, f"connection failed ({type(exc).__name__})"
        if 200 <= status < 300:
            return True, status, None
        return False, status, f"HTTP {status}"

    async def run_batch(self, token: str, batch: list[Attempt]) -> int:
        """Send one endpoint's claimed deliveries in order; stop at the first failure.

        Successes are recorded together at most every ``FLUSH_SECONDS`` (renewing the leases of what
        is still to send), so the database sees a few transactions per batch, not two per event; a
        crash before a flush only means those events are sent again (at least once).
        """
        ok: list[tuple[DeliveryRow, int | None]] = []
        last_flush = time.monotonic()
        for i, (d, w, e) in enumerate(batch):
            if w is None or e is None:
                await self._record(token, ok, failed=(d, None, "the event was removed by retention", True),
                                   rest=batch[i + 1 :], w=w)
                return len(ok) + 1
            success, status, error = await self.send(d, w, e)
            rest = batch[i + 1 :]
            if not success:
                final = d.attempts >= self.settings.webhook_max_attempts
                await self._record(token, ok, failed=(d, status, error, final), rest=rest, w=w)
                return len(ok) + 1
            ok.append((d, status))
            if rest and time.monotonic() - last_flush < FLUSH_SECONDS:
                continue
            if not await self._record(token, ok, failed=None, rest=rest, w=w):
                return len(ok)  # a lease was taken back (manual retry): leave the rest to a later round
            w.failing = False
            ok = []
            last_flush = time.monotonic()
        return len(batch)

    async def _record(
        self,
        token: str,
        ok: list[tuple[DeliveryRow, int | None]],
        *,
        failed: tuple[DeliveryRow, int | None, str | None, bool] | None,
        rest: list[Attempt],
        w: WebhookRow | None,
    ) -> bool:
        """One transaction: successes, the failure (retry or final), then renew or release the rest."""
        when = now()
        held = True
        async with self.store.write() as tx:
            for d, status in ok:
                held &= await tx.finish_delivery(d.id, token, status="succeeded", when=when, http_status=status)
            flag: bool | None = False if ok and w is not None and w.failing else None
            if failed is not None:
                d, status, error, final = failed
                nxt = None if final else _later(retry_delay(self.settings, d.attempts))
                recorded = await tx.finish_delivery(d.id, token, status="failed" if final else "pending", when=when,
                                                    next_attempt_at=nxt, http_status=status, error=error)
                if recorded and final:
                    flag = True
                    log.warning("webhook_delivery_failed", tenant=d.tenant_id, webhook=d.endpoint_id, delivery=d.id,
                                attempts=d.attempts, error=error)
            # A final failure flags the endpoint; its next success clears the flag.
            if flag is not None and w is not None and flag != w.failing:
                await tx.update_webhook(w.tenant_id, w.id, failing=flag)
            ids = [d.id for d, _, _ in rest]
            lease = self._lease() if failed is None and held else None
            renewed = await tx.renew_leases(ids, token, lease_until=lease)
            held &= renewed == len(ids)
        if not held:
            log.info("webhook_attempt_superseded", token=token)
        return held


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
