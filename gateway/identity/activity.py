"""The per-tenant activity log (R12): scim_provision, scim_deprovision, scim_error, scim_read.

Provisioning events are written by a listener inside the change's own transaction, so an event
exists exactly when its change does. Error and read events are written after the response.
Every payload passes through :func:`redact` first.
"""

from __future__ import annotations

from typing import Any

from gateway.clock import now
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


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking field replaced (names compared case-insensitively)."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and k.lower() in _SECRET_NAMES else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


async def provisioning_listener(tx: Tx, tenant: TenantRow, change: Change, context: dict[str, Any]) -> None:
    deprovision = change.action in ("deactivated", "deleted")
    data: dict[str, Any] = {
        "resource_type": change.resource_type,
        "resource_id": change.resource_id,
        "action": change.action,
        "status": _STATUS.get(change.action, 204 if change.resource is None else 200),
        "client": context.get("client"),
    }
    resource = change.resource or context.get("before") or {}
    if change.resource_type == "User":
        data["userName"] = resource.get("userName")
        data["email"] = primary_email(resource)
    else:
        data["displayName"] = resource.get("displayName")
    await tx.insert_event(tenant.id, DEPROVISION if deprovision else PROVISION, now(), data)


async def record_request(
    store: Store,
    tenant: TenantRow,
    *,
    method: str,
    path: str,
    status: int,
    client: str | None,
    request_id: str,
    request_body: Any,
    response_body: Any,
    error: Any | None,
) -> None:
    """Write ``scim_error`` for a failed request, or ``scim_read`` when the tenant's debug toggle is on."""
    if error is None and not tenant.log_successful_events:
        return
    data: dict[str, Any] = {"method": method, "path": path, "status": status, "client": client, "request_id": request_id}
    if error is not None:
        data["scimType"] = error.scim_type
        data["detail"] = error.detail
        kind = ERROR
    else:
        kind = READ
    if tenant.log_successful_events or error is not None:
        data["request"] = redact(request_body)
    if tenant.log_successful_events:
        data["response"] = redact(response_body)
    async with store.write() as tx:
        await tx.insert_event(tenant.id, kind, now(), data)
