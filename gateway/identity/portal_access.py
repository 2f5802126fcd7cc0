"""Portal access: single-use expiring links for tenant admins, and server-side sessions.

A link token and a session id are 256-bit random values handed to the browser once; the database
holds only their SHA-256, so neither a dump nor a log line can be replayed. Redeeming a link marks it
used and creates the session in one transaction: two clicks on one link yield one session.
Sessions end at an idle timeout (``last_seen``) and an absolute one (``expires``), or when signed out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from gateway.clock import format_time
from gateway.store.base import PortalSessionRow, Store, TenantRow

DEFAULT_LINK_MINUTES = 5
MAX_LINK_MINUTES = 60
LINK_PREFIX = "pl_"
# last_seen is written at most this often per session: a page load's API calls cost one write, not five
TOUCH_EVERY = timedelta(seconds=30)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


@dataclass(slots=True)
class NewLink:
    token: str
    expires: str


@dataclass(slots=True)
class Session:
    """A live session; ``tenant_id`` None means an operator."""

    id_hash: str
    tenant_id: str | None


class LinkRefused(Exception):
    """A link that cannot start a session: ``reason`` is ``unknown``, ``used`` or ``expired``."""

    def __init__(self, reason: Literal["unknown", "used", "expired"]) -> None:
        super().__init__(reason)
        self.reason = reason


async def create_link(store: Store, tenant: TenantRow, minutes: int = DEFAULT_LINK_MINUTES) -> NewLink:
    if not 1 <= minutes <= MAX_LINK_MINUTES:
        raise ValueError(f"minutes must be from 1 to {MAX_LINK_MINUTES}")
    token = LINK_PREFIX + secrets.token_urlsafe(32)
    start = _utc_now()
    expires = format_time(start + timedelta(minutes=minutes))
    async with store.write() as tx:
        await tx.insert_portal_link(_hash(token), tenant.id, format_time(start), expires)
    return NewLink(token=token, expires=expires)


def _link_state(used: str | None, expires: str, at: str) -> Literal["used", "expired"] | None:
    if used is not None:
        return "used"
    if expires <= at:
        return "expired"
    return None


async def check_link(store: Store, token: str) -> str:
    """The tenant id a still-usable link opens (without using it); :class:`LinkRefused` otherwise."""
    async with store.read() as r:
        link = await r.get_portal_link(_hash(token))
    if link is None:
        raise LinkRefused("unknown")
    state = _link_state(link.used, link.expires, format_time(_utc_now()))
    if state:
        raise LinkRefused(state)
    return link.tenant_id


def _new_session(tenant_id: str | None, idle: timedelta, absolute: timedelta) -> tuple[str, PortalSessionRow]:
    sid = secrets.token_urlsafe(32)
    start = _utc_now()
    return sid, PortalSessionRow(id_hash=_hash(sid), tenant_id=tenant_id, created=format_time(start),
                                 last_seen=format_time(start), expires=format_time(start + absolute))


async def redeem_link(store: Store, token: str, *, idle: timedelta, absolute: timedelta) -> tuple[str, str]:
    """Use the link and start its tenant's session: returns (session id, tenant id)."""
    h = _hash(token)
    at = format_time(_utc_now())
    async with store.write() as tx:
        link = await tx.get_portal_link(h)
        if link is None:
            raise LinkRefused("unknown")
        state = _link_state(link.used, link.expires, at)
        if state or not await tx.use_portal_link(h, at):
            raise LinkRefused(state or "used")
        sid, row = _new_session(link.tenant_id, idle, absolute)
        await tx.insert_portal_session(row)
    return sid, link.tenant_id


def token_matches(presented: str, expected: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(presented.encode(), (expected or "").encode())


async def start_operator_session(store: Store, *, idle: timedelta, absolute: timedelta) -> str:
    """A session for someone who has just presented the admin token (checked by the caller)."""
    sid, row = _new_session(None, idle, absolute)
    async with store.write() as tx:
        await tx.insert_portal_session(row)
    return sid


async def load_session(store: Store, sid: str, *, idle: timedelta) -> Session | None:
    """The live session for a cookie value, refreshing its idle clock; None when unknown or timed out."""
    if not sid or len(sid) > 200:
        return None
    h = _hash(sid)
    async with store.read() as r:
        row = await r.get_portal_session(h)
    if row is None:
        return None
    moment = _utc_now()
    at = format_time(moment)
    last_seen = _parse(row.last_seen)
    if row.expires <= at or last_seen + idle <= moment:
        async with store.write() as tx:
            await tx.delete_portal_session(h)
        return None
    if moment - last_seen >= TOUCH_EVERY:
        async with store.write() as tx:
            await tx.touch_portal_session(h, at)
    return Session(id_hash=h, tenant_id=row.tenant_id)


async def end_session(store: Store, sid: str) -> bool:
    async with store.write() as tx:
        return await tx.delete_portal_session(_hash(sid))


async def prune(store: Store, *, idle: timedelta) -> int:
    moment = _utc_now()
    async with store.write() as tx:
        return await tx.prune_portal(now=format_time(moment), idle_before=format_time(moment - idle))
