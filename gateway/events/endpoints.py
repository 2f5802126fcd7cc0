"""Webhook endpoints and their deliveries: the admin actions behind the API and the CLI.

Same conventions as :mod:`gateway.identity.management`: validated input, :class:`AdminError` out.
The signing secret is shown once, when the endpoint is created or its secret rotated. It is kept
in the database as it is, because signing needs the secret itself (a hash cannot sign); it never
appears in a listing, a log line, an event or an error.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator

from gateway.clock import now
from gateway.events.feed import decode_cursor, encode_cursor
from gateway.events.outbox import EVENT_TYPES
from gateway.identity.management import AdminError, StrictModel, require_tenant
from gateway.store.base import DeliveryRow, Store, WebhookRow

DELIVERY_STATUSES = ("pending", "succeeded", "failed")
MAX_URL = 2048
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host and no credentials; raises ValueError with the reason."""
    url = url.strip()
    if not url or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise ValueError(f"url must be an absolute http or https URL of at most {MAX_URL} characters, without spaces")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("url must use http or https")
    try:
        host, _port = parts.hostname, parts.port  # .port raises on a malformed or out-of-range port
    except ValueError:
        raise ValueError("url has an invalid port") from None
    if not host:
        raise ValueError("url needs a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("url must not carry credentials; the signature authenticates the gateway")
    if parts.fragment:
        raise ValueError("url must not have a #fragment")
    return url


def _check_types(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(types))


class WebhookCreate(StrictModel):
    url: Annotated[str, StringConstraints(max_length=MAX_URL)]
    events: list[str] | None = Field(None, max_length=len(EVENT_TYPES))
    description: Description = ""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return _check_types(value)


class WebhookUpdate(StrictModel):
    url: Annotated[str, StringConstraints(max_length=MAX_URL)] | None = None
    events: list[str] | None = Field(None, max_length=len(EVENT_TYPES))
    enabled: bool | None = None
    description: Description | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return _check_types(value)


def webhook_view(w: WebhookRow) -> dict[str, Any]:
    return {"id": w.id, "url": w.url, "events": list(w.events) or list(EVENT_TYPES), "all_events": not w.events,
            "description": w.description, "enabled": w.enabled, "failing": w.failing, "created": w.created,
            "updated": w.updated}


def delivery_view(d: DeliveryRow) -> dict[str, Any]:
    return {"id": d.id, "webhook_id": d.endpoint_id, "event_id": d.event_id, "event_type": d.event_type,
            "sequence": d.event_seq, "status": d.status, "attempts": d.attempts, "last_status": d.last_status,
            "last_error": d.last_error, "next_attempt_at": d.next_attempt_at if d.status == "pending" else None,
            "created": d.created, "completed_at": d.completed_at}


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _missing(tenant_id: str, webhook_id: str) -> AdminError:
    return AdminError(404, "not_found", f"no webhook {webhook_id!r} in tenant {tenant_id!r}")


async def create_webhook(store: Store, tenant_id: str, body: WebhookCreate) -> dict[str, Any]:
    await require_tenant(store, tenant_id)
    ts = now()
    row = WebhookRow(id=f"wh_{uuid.uuid4().hex}", tenant_id=tenant_id, url=body.url, events=body.events or [],
                     description=body.description, enabled=True, secret=_new_secret(), cursor_seq=0, failing=False,
                     created=ts, updated=ts)
    async with store.write() as tx:
        await tx.insert_webhook(row)
    return {**webhook_view(row), "secret": row.secret}


async def list_webhooks(store: Store, tenant_id: str) -> list[dict[str, Any]]:
    await require_tenant(store, tenant_id)
    async with store.read() as r:
        return [webhook_view(w) for w in await r.list_webhooks(tenant_id)]


async def get_webhook(store: Store, tenant_id: str, webhook_id: str) -> dict[str, Any]:
    await require_tenant(store, tenant_id)
    async with store.read() as r:
        w = await r.get_webhook(tenant_id, webhook_id)
    if w is None:
        raise _missing(tenant_id, webhook_id)
    return webhook_view(w)


async def update_webhook(store: Store, tenant_id: str, webhook_id: str, body: WebhookUpdate) -> dict[str, Any]:
    await require_tenant(store, tenant_id)
    fields: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set if getattr(body, k) is not None}
    if "events" in body.model_fields_set and body.events is None:
        fields["events"] = []  # null: every event type
    if fields.get("enabled") is True:
        fields["failing"] = False  # re-enabling is the operator's "it works again"
    fields["updated"] = now()
    async with store.write() as tx:
        if not await tx.update_webhook(tenant_id, webhook_id, **fields):
            raise _missing(tenant_id, webhook_id)
        w = await tx.get_webhook(tenant_id, webhook_id)
    assert w is not None
    return webhook_view(w)


async def delete_webhook(store: Store, tenant_id: str, webhook_id: str) -> None:
    await require_tenant(store, tenant_id)
    async with store.write() as tx:
        if not await tx.delete_webhook(tenant_id, webhook_id):
            raise _missing(tenant_id, webhook_id)


async def rotate_secret(store: Store, tenant_id: str, webhook_id: str) -> dict[str, Any]:
    """A new signing secret, in force for the next attempt; the old one stops working at once."""
    await require_tenant(store, tenant_id)
    secret = _new_secret()
    async with store.write() as tx:
        if not await tx.update_webhook(tenant_id, webhook_id, secret=secret, updated=now()):
            raise _missing(tenant_id, webhook_id)
        w = await tx.get_webhook(tenant_id, webhook_id)
    assert w is not None
    return {**webhook_view(w), "secret": secret}


async def list_deliveries(
    store: Store, tenant_id: str, webhook_id: str, *, status: str | None = None, limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; ``next_cursor`` (null at the end) continues with older ones."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise AdminError(400, "validation_error", f"status must be one of {', '.join(DELIVERY_STATUSES)}")
    await get_webhook(store, tenant_id, webhook_id)
    before = decode_cursor(cursor) if cursor else None
    async with store.read() as r:
        rows = await r.list_deliveries(tenant_id, webhook_id, status=status, limit=limit, before_seq=before)
    return {"data": [delivery_view(d) for d in rows],
            "next_cursor": encode_cursor(rows[-1].event_seq) if len(rows) == limit else None}


async def retry_delivery(store: Store, tenant_id: str, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """Attempt the delivery again now, with a fresh attempt budget (whatever its status)."""
    await require_tenant(store, tenant_id)
    async with store.write() as tx:
        if not await tx.retry_delivery(tenant_id, webhook_id, delivery_id, when=now()):
            raise AdminError(404, "not_found", f"no delivery {delivery_id!r} of webhook {webhook_id!r}")
        d = await tx.get_delivery(tenant_id, webhook_id, delivery_id)
    assert d is not None
    return delivery_view(d)


__all__ = [
    "WebhookCreate",
    "WebhookUpdate",
    "check_url",
    "create_webhook",
    "delete_webhook",
    "delivery_view",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "retry_delivery",
    "rotate_secret",
    "update_webhook",
    "webhook_view",
]
