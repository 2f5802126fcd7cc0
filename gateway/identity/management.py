"""Admin actions shared by the admin API and the CLI: tenants, API keys, users and roles, activity.

Each function takes the store and already-validated input, and raises :class:`AdminError` with an
HTTP status, a stable snake_case code and a detail for humans. The HTTP layer renders that as
``{"error": code, "detail": detail}``; the CLI prints it. Bodies are validated by the pydantic
models here (unknown fields rejected), so the API and the CLI accept exactly the same input.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Callable, Collection, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from datetime import datetime, timedelta, timezone

from gateway.clock import format_time, now
from gateway.events.outbox import USER_ROLES_CHANGED, emit_roles_changed, user_event
from gateway.identity import activity, portal_access, roles, tenants
from gateway.identity.roles import RoleMapping, RoleName
from gateway.plugin_manager import installed_idps
from gateway.store.base import ApiKeyRow, EventRow, Query, ResourceRow, Store, TenantRow
from gateway.store.rows import fold, primary_email

ScimUrl = Callable[[str], str]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# "auto" or an installed IdP plugin's name; which names are installed is checked when the tenant is written
IdpName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
MAX_PAGE = 500


class AdminError(Exception):
    """A refused admin action: ``status`` (HTTP), ``code`` (the ``error`` field) and ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail

    def to_body(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.detail}


def validation_detail(exc: ValidationError) -> str:
    """A readable summary of a pydantic error that never echoes the input (it may hold a secret)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse(model: type[BaseModel], raw: Any) -> Any:
    """Validate ``raw`` (JSON text/bytes or an object) as ``model``; 400 ``validation_error`` otherwise."""
    try:
        if isinstance(raw, (str, bytes)):
            return model.model_validate_json(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        raise AdminError(400, "validation_error", validation_detail(exc)) from None


# request models -------------------------------------------------------------------------------
class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Retention(StrictModel):
    """Per-tenant activity retention; ``null`` falls back to the gateway's settings."""

    max_age_days: int | None = Field(None, ge=1, le=36_500)
    max_events: int | None = Field(None, ge=1, le=100_000_000)


# Per-tenant SCIM rate limit (hardening), kept in the tenant's settings next to retention.
RATE_PER_SECOND = "rate_limit_per_second"
RATE_BURST = "rate_limit_burst"


class RateLimit(StrictModel):
    """Per-tenant rate limit of each API key; ``null`` falls back to the gateway's settings, 0 turns it off."""

    per_second: float | int | None = Field(None, ge=0, le=1_000_000)
    burst: int | None = Field(None, ge=1, le=1_000_000)


class TenantCreate(StrictModel):
    name: Name
    idp: IdpName = "auto"
    scim_enabled: bool = False
    log_successful_events: bool = False
    role_mapping: RoleMapping = Field(default_factory=RoleMapping)
    activity_retention: Retention | None = None
    rate_limit: RateLimit | None = None


class TenantUpdate(StrictModel):
    name: Name | None = None
    idp: IdpName | None = None
    scim_enabled: bool | None = None
    log_successful_events: bool | None = None
    role_mapping: RoleMapping | None = None
    activity_retention: Retention | None = None
    rate_limit: RateLimit | None = None


class ApiKeyCreate(StrictModel):
    name: Name


class PortalLinkCreate(StrictModel):
    minutes: int = Field(portal_access.DEFAULT_LINK_MINUTES, ge=1, le=portal_access.MAX_LINK_MINUTES)


class RolesUpdate(StrictModel):
    roles: list[RoleName] = Field(max_length=1000)


_READ_ONLY_TENANT_FIELDS = ("id", "scim_url", "created")


def reject_read_only(raw: Any) -> None:
    """A clearer 400 than "extra field" for fields the API shows but never takes."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError:
            return
    if isinstance(raw, dict):
        present = [f for f in _READ_ONLY_TENANT_FIELDS if f in raw]
        if present:
            raise AdminError(400, "read_only_field", f"{', '.join(present)} cannot be set: read-only")


# views ------------------------------------------------------------------------------------------
def tenant_view(t: TenantRow, scim_url: ScimUrl) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "idp": t.idp,
        "scim_enabled": t.scim_enabled,
        "log_successful_events": t.log_successful_events,
        "role_mapping": roles.mapping_of(t).model_dump(),
        "activity_retention": {
            "max_age_days": t.settings.get(activity.RETENTION_AGE),
            "max_events": t.settings.get(activity.RETENTION_COUNT),
        },
        "rate_limit": {"per_second": t.settings.get(RATE_PER_SECOND), "burst": t.settings.get(RATE_BURST)},
        "scim_url": scim_url(t.id),
        "created": t.created,
    }


def key_view(k: ApiKeyRow) -> dict[str, Any]:
    # Never the key nor its hash: the prefix is enough to tell keys apart.
    return {"id": k.id, "name": k.name, "prefix": k.prefix, "created": k.created, "last_used": k.last_used,
            "revoked": k.revoked}


def user_view(u: ResourceRow) -> dict[str, Any]:
    raw_name = u.data.get("name")
    name: dict[str, Any] = raw_name if isinstance(raw_name, dict) else {}
    return {
        "id": u.id,
        "userName": u.data.get("userName"),
        "email": primary_email(u.data),
        "givenName": name.get("givenName"),
        "familyName": name.get("familyName"),
        "active": u.data.get("active") is not False,
        "roles": list(u.roles),
        "provisioned_by": u.provisioned_by,
        "created": u.created,
        "lastModified": u.last_modified,
    }


def event_view(e: EventRow) -> dict[str, Any]:
    return {"seq": e.seq, "type": e.type, "created": e.created, **e.data}


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": seq}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["s"]
        if isinstance(seq, int) and not isinstance(seq, bool):
            return seq
    except (ValueError, KeyError, TypeError):
        pass
    raise AdminError(400, "invalid_cursor", "cursor is not valid: pass back next_cursor from the previous page")


def page_limit(raw: Any, default: int = 50) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise AdminError(400, "validation_error", f"limit must be an integer from 1 to {MAX_PAGE}") from None
    if not 1 <= value <= MAX_PAGE:
        raise AdminError(400, "validation_error", f"limit must be an integer from 1 to {MAX_PAGE}")
    return value


# tenants ----------------------------------------------------------------------------------------
def _no_tenant(tenant_id: str) -> AdminError:
    return AdminError(404, "not_found", f"no tenant {tenant_id!r}")


async def require_tenant(store: Store, tenant_id: str) -> TenantRow:
    async with store.read() as r:
        t = await r.get_tenant(tenant_id)
    if t is None:
        raise _no_tenant(tenant_id)
    return t


async def list_tenants(store: Store, scim_url: ScimUrl) -> list[dict[str, Any]]:
    async with store.read() as r:
        return [tenant_view(t, scim_url) for t in await r.list_tenants()]


async def get_tenant(store: Store, tenant_id: str, scim_url: ScimUrl) -> dict[str, Any]:
    return tenant_view(await require_tenant(store, tenant_id), scim_url)


def _retention_settings(current: dict[str, Any], retention: Retention) -> dict[str, Any]:
    out = dict(current)
    for key, value in ((activity.RETENTION_AGE, retention.max_age_days), (activity.RETENTION_COUNT, retention.max_events)):
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _rate_settings(current: dict[str, Any], limit: RateLimit) -> dict[str, Any]:
    out = dict(current)
    for key, value in ((RATE_PER_SECOND, limit.per_second), (RATE_BURST, limit.burst)):
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _check_idp(idp: str, installed: Collection[str] | None) -> None:
    try:
        tenants.check_idp(idp, installed if installed is not None else installed_idps())
    except ValueError as exc:
        raise AdminError(400, "invalid_idp", str(exc)) from None


async def create_tenant(
    store: Store, body: TenantCreate, scim_url: ScimUrl, *, idps: Collection[str] | None = None
) -> dict[str, Any]:
    """Create a tenant; SCIM is off unless the body turns it on (as in the product).

    ``idps`` are the installed IdP plugin names (default: those registered through entry points).
    """
    _check_idp(body.idp, idps)
    t = await tenants.create_tenant(store, body.name, idp=body.idp, scim_enabled=body.scim_enabled)
    fields: dict[str, Any] = {}
    if body.log_successful_events:
        fields["log_successful_events"] = True
    mapping = body.role_mapping.model_dump()
    if mapping != t.role_mapping:
        fields["role_mapping"] = mapping
    if body.activity_retention is not None:
        fields["settings"] = _retention_settings(t.settings, body.activity_retention)
    if body.rate_limit is not None:
        fields["settings"] = _rate_settings(fields.get("settings", t.settings), body.rate_limit)
    if fields:
        async with store.write() as tx:
            await tx.update_tenant(t.id, **fields)
    return await get_tenant(store, t.id, scim_url)


async def update_tenant(
    store: Store, tenant_id: str, body: TenantUpdate, scim_url: ScimUrl, *, idps: Collection[str] | None = None
) -> dict[str, Any]:
    """Apply the fields present in ``body``.

    A new role mapping, or SCIM being turned on, recomputes the roles of SCIM-derived users in
    the same transaction (set-based), so roles never disagree with the mapping once this returns.
    Turning SCIM off changes no user: records stay, and SSO sign-ins take over role syncing.
    """
    given = body.model_fields_set
    if "idp" in given and body.idp is not None:
        _check_idp(body.idp, idps)
    async with store.write() as tx:
        t = await tx.get_tenant(tenant_id)
        if t is None:
            raise _no_tenant(tenant_id)
        fields: dict[str, Any] = {}
        for name in ("name", "idp", "scim_enabled", "log_successful_events"):
            value = getattr(body, name)
            if name in given and value is not None:
                fields[name] = value
        new_mapping = roles.mapping_of(t)
        if "role_mapping" in given and body.role_mapping is not None:
            new_mapping = body.role_mapping
            fields["role_mapping"] = new_mapping.model_dump()
        if "activity_retention" in given:
            fields["settings"] = _retention_settings(t.settings, body.activity_retention or Retention())
        if "rate_limit" in given:
            fields["settings"] = _rate_settings(fields.get("settings", t.settings), body.rate_limit or RateLimit())
        await tx.update_tenant(tenant_id, **fields)
        scim_on = fields.get("scim_enabled", t.scim_enabled)
        mapping_changed = "role_mapping" in fields and fields["role_mapping"] != roles.mapping_of(t).model_dump()
        turned_on = scim_on and not t.scim_enabled
        recomputed = 0
        if scim_on and (mapping_changed or turned_on):
            changes: dict[str, Any] = {}
            recomputed = await roles.recompute_all(tx, tenant_id, new_mapping, context=changes)
            await emit_roles_changed(tx, tenant_id, changes.get(roles.ROLES_CHANGED_KEY) or {}, source="role_mapping")
        updated = await tx.get_tenant(tenant_id)
    assert updated is not None
    return {**tenant_view(updated, scim_url), "roles_recomputed": recomputed}


# api keys ---------------------------------------------------------------------------------------
async def list_keys(store: Store, tenant_id: str) -> list[dict[str, Any]]:
    await require_tenant(store, tenant_id)
    async with store.read() as r:
        return [key_view(k) for k in await r.list_api_keys(tenant_id)]


async def create_key(store: Store, tenant_id: str, body: ApiKeyCreate) -> dict[str, Any]:
    """A new key; the returned ``key`` is the only time its value exists outside the caller."""
    try:
        new = await tenants.create_api_key(store, tenant_id, body.name)
    except LookupError:
        raise _no_tenant(tenant_id) from None
    return {"id": new.row.id, "name": new.row.name, "key": new.key, "created": new.row.created}


async def revoke_key(store: Store, tenant_id: str, key_id: str) -> None:
    await require_tenant(store, tenant_id)
    async with store.write() as tx:
        done = await tx.revoke_api_key(tenant_id, key_id, now())
    if not done:
        raise AdminError(404, "not_found", f"no live API key {key_id!r} in tenant {tenant_id!r}")


# portal links -------------------------------------------------------------------------------------
async def create_portal_link(store: Store, tenant_id: str, body: PortalLinkCreate, base_url: str) -> dict[str, Any]:
    """A single-use link opening a portal session scoped to ``tenant_id``; ``url`` is its only copy."""
    tenant = await require_tenant(store, tenant_id)
    link = await portal_access.create_link(store, tenant, body.minutes)
    return {"url": f"{base_url.rstrip('/')}/portal/link?token={link.token}", "expires_at": link.expires}


# users and roles ----------------------------------------------------------------------------------
def _like(text: str) -> str:
    escaped = fold(text.strip()).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_users(
    store: Store, tenant_id: str, *, limit: int = 50, cursor: str | None = None, search: str | None = None
) -> dict[str, Any]:
    """One page of the tenant's users (SCIM-provisioned and JIT alike), oldest first, with ``next_cursor``.

    ``search`` keeps users whose userName or primary email contains it, whatever its case.
    """
    await require_tenant(store, tenant_id)
    q = Query(limit=limit, after_seq=decode_cursor(cursor) if cursor else None)
    if search and search.strip():
        if len(search) > 200:
            raise AdminError(400, "validation_error", "search must be at most 200 characters")
        pattern = _like(search)
        q.where = "r.user_name_ci LIKE ? ESCAPE '\\' OR r.email_ci LIKE ? ESCAPE '\\'"
        q.params = [pattern, pattern]
    async with store.read() as r:
        page = await r.query_users(tenant_id, q)
    rows = page.rows
    return {
        "users": [user_view(u) for u in rows],
        "total": page.total,
        "next_cursor": encode_cursor(rows[-1].seq) if len(rows) == limit else None,
    }


async def set_roles(store: Store, tenant_id: str, user_id: str, body: RolesUpdate) -> dict[str, Any]:
    """Set a user's roles by hand: only when the tenant's roles are portal-managed (409 otherwise)."""
    async with store.write() as tx:
        t = await tx.get_tenant(tenant_id)
        if t is None:
            raise _no_tenant(tenant_id)
        mapping = roles.mapping_of(t)
        if mapping.source != "portal":
            origin = "SCIM group memberships" if mapping.source == "idp_groups" else f"the SCIM attribute {mapping.attribute!r}"
            raise AdminError(
                409,
                "roles_not_portal_managed",
                f"roles of tenant {tenant_id!r} come from the role mapping (source {mapping.source!r}: {origin}) and "
                "would be overwritten on the next sync or sign-in; change them in the IdP, or set the role "
                "mapping source to 'portal' first",
            )
        before = await tx.get_user(tenant_id, user_id)
        if before is None:
            raise AdminError(404, "not_found", f"no user {user_id!r} in tenant {tenant_id!r}")
        await tx.set_user_roles(tenant_id, {user_id: roles.normalize(body.roles)})
        row = await tx.get_user(tenant_id, user_id)
        assert row is not None
        if row.roles != before.roles:
            tx.emit([user_event(tenant_id, USER_ROLES_CHANGED, row, source="admin", previous_roles=before.roles)])
    return user_view(row)


# activity ---------------------------------------------------------------------------------------
async def list_activity(
    store: Store, tenant_id: str, *, type: str | None = None, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """Events newest first; ``next_cursor`` resumes after the last one shown."""
    if type is not None and type not in activity.EVENT_TYPES:
        raise AdminError(400, "validation_error", f"type must be one of {', '.join(activity.EVENT_TYPES)}")
    await require_tenant(store, tenant_id)
    before = decode_cursor(cursor) if cursor else None
    async with store.read() as r:
        events = await r.list_events(tenant_id, type=type, limit=limit, before_seq=before)
    return {
        "events": [event_view(e) for e in events],
        "next_cursor": encode_cursor(events[-1].seq) if len(events) == limit else None,
    }


HEALTH_HOURS = 24


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


async def connection_health(store: Store, tenant_id: str) -> dict[str, Any]:
    """When the IdP last reached the SCIM endpoint (a key's last use or an event), and errors over 24 hours.

    The error count is the signal Entra's quarantine acts on: a climbing number means the IdP is
    failing requests and may soon stop provisioning. ``hourly`` holds one bucket per UTC hour, oldest
    first, ending with the current (partial) hour: ``errors`` counts ``scim_error`` events and
    ``successful`` every other event (provisioning, deprovisioning, and ``scim_read`` while debug
    logging is on).
    """
    await require_tenant(store, tenant_id)
    at = _utc_now()
    since = format_time(at - timedelta(hours=24))
    first_hour = at.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HEALTH_HOURS - 1)
    hours = [first_hour + timedelta(hours=i) for i in range(HEALTH_HOURS)]
    async with store.read() as r:
        keys = await r.list_api_keys(tenant_id)
        errors, last_error = await r.count_events_since(tenant_id, activity.ERROR, since)
        latest = await r.list_events(tenant_id, limit=1)
        counted = await r.hourly_event_counts(tenant_id, activity.ERROR, format_time(first_hour),
                                              format_time(first_hour + timedelta(hours=HEALTH_HOURS)))
    by_hour = {hour: (total, failed) for hour, total, failed in counted}
    hourly = []
    for start in hours:
        total, failed = by_hour.get(start.strftime("%Y-%m-%dT%H"), (0, 0))
        hourly.append({"hour": start.strftime("%Y-%m-%dT%H:00:00Z"), "successful": total - failed, "errors": failed})
    seen = [k.last_used for k in keys if k.last_used] + [e.created for e in latest]
    return {"last_request": max(seen) if seen else None, "errors_24h": errors, "last_error": last_error,
            "hourly": hourly}


__all__ = [
    "AdminError",
    "ApiKeyCreate",
    "PortalLinkCreate",
    "Retention",
    "RolesUpdate",
    "TenantCreate",
    "TenantUpdate",
    "connection_health",
    "create_key",
    "create_portal_link",
    "create_tenant",
    "get_tenant",
    "list_activity",
    "list_keys",
    "list_tenants",
    "list_users",
    "parse",
    "revoke_key",
    "set_roles",
    "update_tenant",
    "user_view",
]


# tenant deletion (operations, issue 11) ------------------------------------------------------------
async def delete_tenant(store: Store, tenant_id: str) -> dict[str, Any]:
    """Delete the tenant and all its data in one transaction: its keys stop authenticating at once.

    Returns ``{"id", "deleted": true, "removed": {table: rows}}``; 404 ``not_found`` for an unknown tenant.
    """
    async with store.write() as tx:
        removed = await tx.delete_tenant(tenant_id)
    if removed is None:
        raise _no_tenant(tenant_id)
    return {"id": tenant_id, "deleted": True, "removed": removed}
