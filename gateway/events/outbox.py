"""Which events a change writes, built inside the change's own transaction.

:func:`outbox_listener` is a service listener (it runs in every SCIM write transaction, after the
role listener, so it sees the roles the change recomputed). The admin, role-mapping and SSO paths
call :func:`emit_roles_changed` / :func:`user_event` in their own transactions. Events are only
buffered here (``tx.emit``); the store numbers and writes them just before COMMIT, so a change and
its events commit together or not at all.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Iterable, Mapping

from gateway.clock import now
from gateway.core.schema import GROUP_SCHEMA, USER_SCHEMA
from gateway.identity.roles import ROLES_CHANGED_KEY
from gateway.store.base import OutboxEvent, ResourceRow, TenantRow, Tx
from gateway.store.rows import primary_email
from gateway.types import Change

USER_CREATED = "user.created"
USER_UPDATED = "user.updated"
USER_DEACTIVATED = "user.deactivated"
USER_REACTIVATED = "user.reactivated"
USER_DELETED = "user.deleted"
USER_ROLES_CHANGED = "user.roles_changed"
GROUP_CREATED = "group.created"
GROUP_UPDATED = "group.updated"
GROUP_DELETED = "group.deleted"
GROUP_MEMBER_ADDED = "group.member_added"
GROUP_MEMBER_REMOVED = "group.member_removed"
EVENT_TYPES = (
    USER_CREATED, USER_UPDATED, USER_DEACTIVATED, USER_REACTIVATED, USER_DELETED, USER_ROLES_CHANGED,
    GROUP_CREATED, GROUP_UPDATED, GROUP_DELETED, GROUP_MEMBER_ADDED, GROUP_MEMBER_REMOVED,
)
SOURCES = ("scim", "sso", "admin", "role_mapping")
_NOT_RESOURCE = frozenset({"groups", "members", "password"})


# The member loop hands the event loop back after this many events, so a 20,000-member change never
# holds it for more than a few milliseconds at a time.
_YIELD_EVERY = 1000


def event_ids(n: int) -> list[str]:
    """``n`` random event ids (``evt_`` and 128 random bits in hex), drawn from the OS in one call."""
    raw = os.urandom(16 * n).hex()
    return [f"evt_{raw[i:i + 32]}" for i in range(0, 32 * n, 32)]


def new_event(tenant_id: str, type: str, data: dict[str, Any], *, source: str, client: str | None = None,
              occurred_at: str | None = None, id: str | None = None) -> OutboxEvent:
    return OutboxEvent(id=id or event_ids(1)[0], type=type, tenant_id=tenant_id, occurred_at=occurred_at or now(),
                       source=source, client=client, data=data)


def event_body(e: OutboxEvent) -> dict[str, Any]:
    """The event as the events API returns it and a webhook receives it."""
    return {"id": e.id, "type": e.type, "tenant_id": e.tenant_id, "sequence": e.seq, "occurred_at": e.occurred_at,
            "source": e.source, "client": e.client, "data": e.data}


def _resource(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The stored SCIM resource without memberships (they have their own events) or ``meta.location``."""
    out = {k: v for k, v in doc.items() if k not in _NOT_RESOURCE}
    meta = out.get("meta")
    if isinstance(meta, dict):
        out["meta"] = {k: v for k, v in meta.items() if k != "location"}
    return out


def resource_of(row: ResourceRow, schema: str = USER_SCHEMA) -> dict[str, Any]:
    """A row's SCIM resource, as the SCIM API shows it (the same shape the SCIM write path emits)."""
    schemas = [schema, *(k for k in row.data if k.startswith("urn:") and row.data[k])]
    return {"schemas": schemas, "id": row.id, **{k: v for k, v in row.data.items() if k != "schemas"},
            "meta": {"resourceType": "User" if schema == USER_SCHEMA else "Group", "created": row.created,
                     "lastModified": row.last_modified, "version": f'W/"{row.version}"'}}


def user_data(user_id: str, doc: Mapping[str, Any], roles: Iterable[str]) -> dict[str, Any]:
    name = doc.get("name")
    name = name if isinstance(name, dict) else {}
    return {
        "id": user_id,
        "userName": doc.get("userName"),
        "externalId": doc.get("externalId"),
        "email": primary_email(dict(doc)),
        "givenName": name.get("givenName"),
        "familyName": name.get("familyName"),
        "active": doc.get("active") is not False,
        "roles": list(roles),
        "resource": _resource({**doc, "id": user_id}),
    }


def group_data(group_id: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": group_id, "displayName": doc.get("displayName"), "externalId": doc.get("externalId")}


def changed_attributes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Top-level attribute names whose value differs (``members`` excluded: those have member events)."""
    names = set(before) | set(after)
    return sorted(k for k in names if k not in _NOT_RESOURCE and k != "schemas" and before.get(k) != after.get(k))


def user_event(tenant_id: str, type: str, row: ResourceRow, *, source: str, client: str | None = None,
               **extra: Any) -> OutboxEvent:
    return new_event(tenant_id, type, {**user_data(row.id, resource_of(row), row.roles), **extra},
                     source=source, client=client)


async def emit_roles_changed(
    tx: Tx,
    tenant_id: str,
    changed: Mapping[str, tuple[list[str], list[str]]],
    *,
    source: str,
    client: str | None = None,
    skip: str | None = None,
) -> None:
    """``user.roles_changed`` for every user in ``changed`` ({id: (previous, new)}), read set-based."""
    ids = [uid for uid, (old, new) in changed.items() if uid != skip and old != new]
    if not ids or not tx.emitting:
        return
    rows = await tx.users_by_ids(tenant_id, ids)
    tx.emit([user_event(tenant_id, USER_ROLES_CHANGED, rows[uid], source=source, client=client,
                        previous_roles=list(changed[uid][0])) for uid in ids if uid in rows])


async def outbox_listener(tx: Tx, tenant: TenantRow, change: Change, context: dict[str, Any]) -> None:
    """Service listener: the events of one SCIM write, in its transaction (``source`` = ``scim``)."""
    if not tx.emitting:
        return
    tid, rid, client = tenant.id, change.resource_id, context.get("client")
    roles_changed: dict[str, tuple[list[str], list[str]]] = context.get(ROLES_CHANGED_KEY) or {}
    out: list[tuple[str, dict[str, Any]]] = []

    def add(type: str, data: dict[str, Any]) -> None:
        out.append((type, data))

    if change.resource_type == "User":
        before_roles = list(context.get("before_roles") or [])
        if change.action == "deleted":
            add(USER_DELETED, user_data(rid, context.get("before") or {}, before_roles))
        else:
            roles = roles_changed[rid][1] if rid in roles_changed else before_roles
            doc = change.resource or {"id": rid, **(context.get("after_data") or {})}
            if change.action == "created":
                add(USER_CREATED, user_data(rid, doc, roles))
            else:
                attrs = changed_attributes(context.get("before_data") or {}, context.get("after_data") or {})
                if attrs:
                    add(f"user.{change.action}", {**user_data(rid, doc, roles), "changed_attributes": attrs})
                if rid in roles_changed and roles_changed[rid][0] != roles:
                    add(USER_ROLES_CHANGED, {**user_data(rid, doc, roles), "previous_roles": list(roles_changed[rid][0])})
    else:
        if change.action == "deleted":
            add(GROUP_DELETED, group_data(rid, context.get("before") or {}))
        elif change.action == "created":
            add(GROUP_CREATED, group_data(rid, change.resource or {}))
        else:
            before, after = context.get("before_data") or {}, context.get("after_data") or {}
            attrs = changed_attributes(before, after)
            if attrs:
                add(GROUP_UPDATED, {**group_data(rid, after), "changed_attributes": attrs})
        delta = context.get("member_delta")
        if delta is not None and change.action != "deleted":
            removed_set, added_set = set(delta.removed), set(delta.added)
            added = [m for m in dict.fromkeys(delta.added) if m not in removed_set]
            removed = [m for m in dict.fromkeys(delta.removed) if m not in added_set]
            types: dict[str, str] = dict(getattr(delta, "types", None) or {})
            unknown = [m for m in removed if m not in types]
            if unknown:
                types.update(await tx.existing_ids(tid, unknown))
            for kind, ids in ((GROUP_MEMBER_ADDED, added), (GROUP_MEMBER_REMOVED, removed)):
                for n, m in enumerate(ids, start=1):
                    member_type = types.get(m, "User")
                    data = {"group_id": rid, "member_id": m, "member_type": member_type}
                    if member_type == "User":
                        data["user_id"] = m
                    add(kind, data)
                    if n % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
    # One change, one moment: every event it writes carries the same occurred_at.
    at = now()
    for start in range(0, len(out), _YIELD_EVERY):
        if start:
            await asyncio.sleep(0)
        chunk = out[start:start + _YIELD_EVERY]
        tx.emit([new_event(tid, type, data, source="scim", client=client, occurred_at=at, id=eid)
                 for eid, (type, data) in zip(event_ids(len(chunk)), chunk)])
    if change.resource_type == "Group" and roles_changed:
        await emit_roles_changed(tx, tid, roles_changed, source="scim", client=client)


__all__ = [
    "EVENT_TYPES",
    "SOURCES",
    "changed_attributes",
    "emit_roles_changed",
    "event_body",
    "group_data",
    "new_event",
    "outbox_listener",
    "resource_of",
    "user_data",
    "user_event",
]
