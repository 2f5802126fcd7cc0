"""The per-tenant activity log (R12): scim_provision, scim_deprovision, scim_error, scim_read.

Provisioning events are written by a listener inside the change's own transaction, so an event
exists exactly when its change does. Error and read events are written after the response by an
:class:`ActivityWriter`, so they never delay or fail the SCIM answer.
Every payload passes through :func:`redact` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, quote, urlencode

import orjson

import structlog

from gateway.clock import format_time, now
from gateway.settings import Settings
from gateway.store.base import Store, TenantRow, Tx
from gateway.store.rows import primary_email
from gateway.types import Change

PROVISION = "scim_provision"
DEPROVISION = "scim_deprovision"
ERROR = "scim_error"
READ = "scim_read"
EVENT_TYPES = (PROVISION, DEPROVISION, ERROR, READ)
REDACTED = "[redacted]"
_SECRET_NAMES = {"password", "secret", "token", "access_token", "refresh_token", "client_secret", "key", "api_key",
                 "apikey", "authorization", "bearer", "credentials"}
_STATUS = {"created": 201, "deleted": 204}
# request headers worth keeping with an exchange: they tell which client sent it and how (never credentials)
RECORDED_HEADERS = frozenset({"user-agent", "content-type", "accept"})


# Secrets that can hide in free text (an error detail quoting a header, a value pasted in the wrong
# field): gateway API keys and bearer credentials are masked wherever they appear.
_SECRET_TEXT = re.compile(r"(scimgw_[A-Za-z0-9_\-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,})")
# A filter comparing a secret-named attribute (``password eq "..."``, in a .search body, a query string
# or a PATCH path): the compared value is masked, the rest of the filter kept for diagnosis.
# Bounded repetitions and a value that always ends (at its closing quote or the end of the text) keep
# the scan linear in the text, whatever a client puts in it.
_SECRET_FILTER = re.compile(
    r'(?i)((?:password|secret|token|credential)[\w$-]{0,64}+\s{1,16}+(?:eq|ne|co|sw|ew|gt|ge|lt|le)\s{1,16}+)'
    r'("(?:[^"\\]|\\.)*(?:"|$)|[^\s)\]]+)'
)
_FILTER_WORDS = ("password", "secret", "token", "credential")
_SECRET_PARTS = ("password", "secret", "token")
log = structlog.get_logger("scim_gateway.activity")


def _secret_name(name: str, also: frozenset[str] = frozenset()) -> bool:
    # "urn:...:User:password", "name.password" and "newPassword" are as secret as "password".
    last = re.split(r"[:.]", name.lower())[-1]
    return last in _SECRET_NAMES or last in also or any(p in last for p in _SECRET_PARTS)


# In a body that is not valid JSON, a secret-named key is followed by its value as text.
_SECRET_PAIR = re.compile(
    r"""((?:"|')?[\w:.\-]*(?:password|secret|token|credential|api_?key)[\w\-]*(?:"|')?\s*[:=]\s*)("(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,}&]+)""",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Redact a raw body that could not be parsed: secret-named ``key: value`` pairs and embedded keys."""
    return _SECRET_TEXT.sub(REDACTED, _SECRET_PAIR.sub(lambda m: m.group(1) + '"' + REDACTED + '"', text))


def redact(value: Any, also: frozenset[str] = frozenset()) -> Any:
    """A copy of ``value`` with every secret-looking field replaced (names compared case-insensitively)
    and API keys or bearer credentials masked inside strings. ``also``: more secret names, lowercased
    (a tenant's writeOnly extension attributes)."""
    if isinstance(value, dict):
        out = {k: (REDACTED if isinstance(k, str) and _secret_name(k, also) else redact(v, also)) for k, v in value.items()}
        # A PATCH operation names its target in "path": {"path": "password", "value": "..."} hides the
        # secret under an innocent key.
        path = next((v for k, v in value.items() if isinstance(k, str) and k.lower() == "path"), None)
        if isinstance(path, str) and _secret_name(re.sub(r"\[.*?\]", "", path), also):
            out = {k: (REDACTED if isinstance(k, str) and k.lower() == "value" else v) for k, v in out.items()}
        return out
    if isinstance(value, list):
        return [redact(v, also) for v in value]
    if isinstance(value, str):
        # Both patterns need a marker word (any case): most strings (every request path) have none.
        low = value.lower()
        if "scimgw_" in value or "bearer" in low:
            value = _SECRET_TEXT.sub(REDACTED, value)
        if any(w in low for w in _FILTER_WORDS):
            value = _SECRET_FILTER.sub(lambda m: f'{m.group(1)}"{REDACTED}"', value)
        return value
    return value


def redact_query(query: str) -> str:
    """A query string with secrets masked in its decoded values (``filter=password eq "..."``); unchanged,
    byte for byte, when there is nothing to mask."""
    pairs = parse_qsl(query, keep_blank_values=True)
    masked = [(k, redact(v)) for k, v in pairs]
    if masked == pairs:
        return str(redact(query))
    return urlencode(masked, quote_via=quote)


def cap_payload(value: Any, limit: int) -> Any:
    """``value`` when its JSON takes at most ``limit`` bytes, else a marker saying how much was cut,
    with the first ``limit`` bytes of the JSON text kept for diagnosis."""
    if value is None:
        return None
    raw = orjson.dumps(value, default=str)
    if len(raw) <= limit:
        return value
    return {"truncated": True, "original_bytes": len(raw), "cut_bytes": len(raw) - limit,
            "head": raw[:limit].decode("utf-8", "ignore")}


async def provisioning_listener(tx: Tx, tenant: TenantRow, change: Change, context: dict[str, Any]) -> None:
    deprovision = change.action in ("deactivated", "deleted")
    data: dict[str, Any] = {
        "resource_type": change.resource_type,
        "resource_id": change.resource_id,
        "action": change.action,
        "status": _STATUS.get(change.action, 204 if change.resource is None else 200),
        "client": context.get("client"),
    }
    ignored = context.get("ignored_attributes")
    if ignored:
        data["ignored_attributes"] = list(ignored)  # so an admin sees why a value never arrived
    resource = change.resource or context.get("before") or {}
    if change.resource_type == "User":
        data["userName"] = resource.get("userName")
        data["email"] = primary_email(resource)
    else:
        data["displayName"] = resource.get("displayName")
    await tx.insert_event(tenant.id, DEPROVISION if deprovision else PROVISION, now(), redact(data))


def request_event(
    tenant: TenantRow,
    *,
    method: str,
    path: str,
    status: int,
    client: str | None,
    request_id: str,
    received: Any,
    normalized: Any,
    received_query: dict[str, str] | None = None,
    normalized_query: dict[str, str] | None = None,
    response_body: Any,
    error: Any | None,
    query: str = "",
    headers: dict[str, str] | None = None,
    max_payload: int = 65_536,
    secret_names: frozenset[str] = frozenset(),
) -> tuple[str, dict[str, Any]] | None:
    """The ``scim_error`` event for a failed request, or ``scim_read`` when the tenant's debug toggle is on.

    ``request`` is the body exactly as the client sent it (parsed JSON, or the raw text when it was
    not JSON) and ``request_normalized`` the body after the IdP plugin's normalisation (present only
    when the plugin changed it), so an admin sees both what the IdP sent and what the gateway
    understood; ``query_normalized`` likewise holds the query parameters after the plugin's
    ``scim_normalize_query`` when it changed ``received_query``. ``query`` (the query string as
    received) and ``headers`` (those in :data:`RECORDED_HEADERS`) are kept so ``activity export`` can
    turn the exchange back into the request the IdP sent. Everything is redacted, ``secret_names``
    (lowercased: the tenant's writeOnly extension attributes) like ``password``, and secret values
    compared in a filter (``password eq "..."``) in the path, the query or a body; each payload
    (request, normalized request, response) is capped at ``max_payload`` bytes of JSON, beyond which
    a marker says how much was cut. None when nothing is to be recorded.
    """
    if error is None and not tenant.log_successful_events:
        return None
    data: dict[str, Any] = {"method": method, "path": redact(path), "status": status, "client": client, "request_id": request_id}
    if query:
        data["query"] = redact_query(query)
    if headers:
        data["headers"] = redact({k: v for k, v in headers.items() if k.lower() in RECORDED_HEADERS})
    if error is not None:
        data["scimType"] = error.scim_type
        data["detail"] = redact(error.detail)
        kind = ERROR
    else:
        kind = READ
    if normalized_query is not None and received_query is not None and normalized_query != received_query:
        data["query_normalized"] = redact(normalized_query, secret_names)
    # an error always carries its request; a read only when debugging
    request = redact(redact_text(received)) if isinstance(received, str) else redact(received, secret_names)
    data["request"] = cap_payload(request, max_payload)
    if normalized is not None and normalized != received:
        data["request_normalized"] = cap_payload(redact(normalized, secret_names), max_payload)
    if tenant.log_successful_events:
        data["response"] = cap_payload(redact(response_body, secret_names), max_payload)
    return kind, data


EventBuilder = Callable[[], Awaitable["tuple[str, dict[str, Any]] | None"]]


class ActivityWriter:
    """Writes request events (``scim_error``, ``scim_read``) off the request path.

    :meth:`submit` never waits and never raises: a SCIM answer is neither delayed nor failed by its
    activity record. Events are built and written by one background task, many per transaction.
    :meth:`flush` waits until everything submitted so far is written (the admin API calls it before
    reading, so a process reads its own events).
    """

    MAX_PENDING = 10_000
    MAX_BATCH = 500

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: asyncio.Queue[tuple[str, str, EventBuilder]] | None = None
        self._task: asyncio.Task[None] | None = None

    def submit(self, tenant_id: str, build: EventBuilder) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(self._queue))
        if self._queue.qsize() >= self.MAX_PENDING:
            log.warning("activity_event_dropped", tenant=tenant_id, reason="backlog")
            return
        self._queue.put_nowait((tenant_id, now(), build))

    async def flush(self) -> None:
        if self._queue is not None and self._task is not None and not self._task.done():
            await self._queue.join()

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, queue: asyncio.Queue[tuple[str, str, EventBuilder]]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                events = []
                for tenant_id, at, build in batch:
                    built = await build()
                    if built is not None:
                        events.append((tenant_id, at, *built))
                if events:
                    async with self.store.write() as tx:
                        for tenant_id, at, kind, data in events:
                            await tx.insert_event(tenant_id, kind, at, data)
            except Exception:  # the activity log must never take the gateway down with it
                log.exception("activity_write_failed", events=len(batch))
            finally:
                for _ in batch:
                    queue.task_done()


# retention ---------------------------------------------------------------------------------------
RETENTION_AGE = "activity_max_age_days"
RETENTION_COUNT = "activity_max_events"
RETENTION_INTERVAL_SECONDS = 300.0


def retention_for(tenant: TenantRow, settings: Settings) -> tuple[int | None, int | None]:
    """(max age in days, max events) for a tenant: its ``settings`` overrides, else the gateway's.

    A value of 0 or less in either place means "no limit" for that dimension.
    """
    age = tenant.settings.get(RETENTION_AGE, settings.activity_max_age_days)
    count = tenant.settings.get(RETENTION_COUNT, settings.activity_max_events)
    age_limit = int(age) if isinstance(age, int) and not isinstance(age, bool) and age > 0 else None
    count_limit = int(count) if isinstance(count, int) and not isinstance(count, bool) and count > 0 else None
    return age_limit, count_limit


async def enforce_retention(store: Store, settings: Settings, *, at: datetime | None = None) -> dict[str, int]:
    """Prune every tenant's activity log to its age, count and size limits; returns events removed per tenant.

    One short transaction per tenant, so a large prune never holds the write lock for all tenants at once.
    """
    moment = at or datetime.now(timezone.utc)
    async with store.read() as r:
        tenants = await r.list_tenants()
    removed: dict[str, int] = {}
    for tenant in tenants:
        age, count = retention_for(tenant, settings)
        if age is None and count is None and settings.activity_max_bytes <= 0:
            continue
        cutoff = format_time(moment - timedelta(days=age)) if age is not None else None
        async with store.write() as tx:
            n = await tx.prune_events(tenant.id, older_than=cutoff, keep=count)
            if settings.activity_max_bytes > 0:  # by size as well: a few huge events must not fill the disk
                n += await tx.prune_events_by_size(tenant.id, settings.activity_max_bytes)
        if n:
            removed[tenant.id] = n
            log.info("activity_pruned", tenant=tenant.id, removed=n)
    return removed


async def retention_loop(store: Store, settings: Settings, *, interval: float = RETENTION_INTERVAL_SECONDS) -> None:
    """Background task: enforce retention at start-up and then every ``interval`` seconds, forever."""
    while True:
        try:
            await enforce_retention(store, settings)
        except Exception:  # a failed prune is retried next round; it must not kill the task
            log.exception("activity_retention_failed")
        await asyncio.sleep(interval)
