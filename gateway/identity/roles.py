"""Role mapping (R9): where a user's roles come from, applied at provisioning time.

A tenant's ``role_mapping`` names one source:

- ``portal``: administrators set roles through the admin API; SCIM never changes them. New users
  (SCIM or JIT) start with ``default_roles``.
- ``idp_groups``: a user's roles are the union of ``group_roles[key]`` over the SCIM groups the
  user is a direct member of. A key matches a group whose displayName equals it
  case-insensitively, or whose id equals it. Nested groups are not expanded.
- ``idp_attribute``: roles are the values of one SCIM user attribute (``roles`` by default, i.e.
  ``roles[].value`` as Entra sends it for SingleAppRoleAssignment and AppRoleAssignmentsComplex;
  any other path, e.g. ``urn:...:enterprise:2.0:User:department``), translated through
  ``attribute_values`` when that table is given (values it lacks are dropped), else used as they are.

For both IdP sources ``default_roles`` is the fallback when the mapping yields no role at all.
Roles are stored sorted and without duplicates, so equal role sets compare equal as stored JSON.

:func:`role_listener` runs inside every SCIM write transaction and recomputes the roles of the
users a change affects, and only those: a one-member PATCH of a 10,000-member group recomputes
one user. :func:`recompute_all` is the set-based recompute used when the mapping itself changes.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Iterable, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from gateway.store.base import Query, TenantRow, Tx
from gateway.store.rows import fold
from gateway.types import Change

log = structlog.get_logger("scim_gateway.roles")

SOURCES = ("portal", "idp_groups", "idp_attribute")
RECOMPUTED_KEY = "roles_recomputed"  # context key: ids of the users whose roles a change recomputed
# context key: {user id: (previous roles, new roles)} for every user whose stored roles a change rewrote
# (the change feed's user.roles_changed events are written from it)
ROLES_CHANGED_KEY = "roles_changed"
_PAGE = 500

RoleName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
AttributePath = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=r"^[A-Za-z0-9_:.$\-]+$")
]


class RoleMapping(BaseModel):
    """A tenant's role mapping, as stored in ``tenants.role_mapping`` and sent to the admin API."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: Literal["portal", "idp_groups", "idp_attribute"] = "portal"
    group_roles: dict[RoleName, list[RoleName]] = Field(default_factory=dict)
    attribute: AttributePath = "roles"
    attribute_values: dict[RoleName, RoleName | list[RoleName]] | None = None
    default_roles: list[RoleName] = Field(default_factory=list)

    def pairs(self) -> list[tuple[str, str]]:
        """``(group key, role)`` for every entry of ``group_roles``: the table the store joins on."""
        return [(key, role) for key, roles in self.group_roles.items() for role in normalize(roles)]

    def maps_group(self, group_id: str | None, display_name: str | None) -> bool:
        """Whether a group with this id or name contributes any role."""
        name = fold(display_name) if isinstance(display_name, str) else None
        return any(roles and (key == group_id or fold(key) == name) for key, roles in self.group_roles.items())


def normalize(roles: Iterable[str]) -> list[str]:
    """Sorted, without duplicates or blanks: the one form roles are stored and compared in."""
    return sorted({r.strip() for r in roles if isinstance(r, str) and r.strip()})


def mapping_of(tenant: TenantRow) -> RoleMapping:
    """The tenant's mapping; a stored mapping that no longer validates acts as portal-managed (never rewrites roles)."""
    try:
        return RoleMapping.model_validate(tenant.role_mapping or {})
    except ValidationError:
        log.warning("role_mapping_invalid", tenant=tenant.id)
        return RoleMapping(source="portal")


# computing roles from data ----------------------------------------------------------------------
def roles_for_groups(mapping: RoleMapping, groups: Iterable[str | tuple[str | None, str | None]]) -> list[str]:
    """Roles for a user in ``groups``: names (an SSO assertion's) or ``(id, displayName)`` pairs (SCIM groups)."""
    wanted: set[str] = set()
    for g in groups:
        gid, name = g if isinstance(g, tuple) else (g, g)
        folded = fold(name) if isinstance(name, str) else None
        for key, roles in mapping.group_roles.items():
            if key == gid or fold(key) == folded:
                wanted.update(roles)
    return normalize(wanted) or normalize(mapping.default_roles)


def attribute_values(document: dict[str, Any], path: str) -> list[str]:
    """The string values at ``path`` in a SCIM document (attribute names compared case-insensitively).

    ``roles`` yields every ``roles[].value``; ``name.givenName`` walks sub-attributes; a path that
    starts with an extension URN (``urn:...:enterprise:2.0:User:department``) reads that extension.
    """
    container: Any = document
    rest = path
    if path.lower().startswith("urn:"):
        urns = sorted((k for k in document if isinstance(k, str) and k.lower().startswith("urn:")), key=len, reverse=True)
        found = next((k for k in urns if path.lower().startswith(k.lower() + ":")), None)
        if found is None:
            return []
        container, rest = document[found], path[len(found) + 1 :]
    nodes: list[Any] = [container]
    for part in rest.split("."):
        nxt: list[Any] = []
        for node in _flatten(nodes):
            if isinstance(node, dict):
                key = next((k for k in node if isinstance(k, str) and k.lower() == part.lower()), None)
                if key is not None:
                    nxt.append(node[key])
        nodes = nxt
    out: list[str] = []
    for value in _flatten(nodes):
        out.extend(_scalar_values(value))
    return out


def _flatten(nodes: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for n in nodes:
        flat.extend(n if isinstance(n, list) else [n])
    return flat


def _scalar_values(value: Any) -> list[str]:
    if isinstance(value, dict):
        # A multi-valued complex attribute named without a sub-attribute: its ``value`` (RFC 7643 §2.4).
        inner = next((v for k, v in value.items() if isinstance(k, str) and k.lower() == "value"), None)
        return _scalar_values(inner) if inner is not None else []
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, str):
        text = value.strip()
        # A value that is itself a JSON object ({"id", "value", "displayName"}) is read for its
        # ``value``: some clients encode complex values as strings and a role named "{...}" is never meant.
        if text.startswith("{") and text.endswith("}"):
            try:
                decoded = json.loads(text)
            except ValueError:
                return [text]
            if isinstance(decoded, dict):
                return _scalar_values(decoded)
        return [text] if text else []
    return []


def roles_for_attribute(mapping: RoleMapping, document: dict[str, Any]) -> list[str]:
    """Roles from the mapping's attribute in ``document`` (a SCIM user, or an SSO assertion's attributes)."""
    values = attribute_values(document, mapping.attribute)
    if mapping.attribute_values is not None:
        table = mapping.attribute_values
        folded = {fold(k): v for k, v in table.items()}
        mapped: list[str] = []
        for v in values:
            hit = table.get(v, folded.get(fold(v)))
            if hit is not None:
                mapped.extend(hit if isinstance(hit, list) else [hit])
        values = mapped
    return normalize(values) or normalize(mapping.default_roles)


# recomputing stored roles -------------------------------------------------------------------------
async def _write_changed(
    tx: Tx, tenant_id: str, new: dict[str, list[str]], current: dict[str, list[str]], context: dict[str, Any] | None
) -> int:
    changed = {uid: roles for uid, roles in new.items() if uid in current and current[uid] != roles}
    await tx.set_user_roles(tenant_id, changed)
    _note_changed(context, {uid: (current[uid], roles) for uid, roles in changed.items()})
    return len(changed)


def _note_changed(context: dict[str, Any] | None, changes: dict[str, tuple[list[str], list[str]]]) -> None:
    if context is None or not changes:
        return
    seen: dict[str, tuple[list[str], list[str]]] = context.setdefault(ROLES_CHANGED_KEY, {})
    for uid, (old, new) in changes.items():
        seen[uid] = (seen[uid][0] if uid in seen else old, new)  # the first "previous" wins


def _note(context: dict[str, Any] | None, user_ids: Iterable[str]) -> None:
    if context is not None:
        context.setdefault(RECOMPUTED_KEY, set()).update(user_ids)


async def recompute_users(
    tx: Tx,
    tenant_id: str,
    mapping: RoleMapping,
    user_ids: list[str],
    *,
    exclude_group: str | None = None,
    context: dict[str, Any] | None = None,
) -> int:
    """Recompute the group-derived roles of ``user_ids`` (ids that are not users are ignored); returns rows changed."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return 0
    current = await tx.get_user_roles(tenant_id, ids)
    computed = await tx.member_group_roles(tenant_id, mapping.pairs(), user_ids=list(current), exclude_group=exclude_group)
    default = normalize(mapping.default_roles)
    new = {uid: normalize(computed.get(uid, ())) or default for uid in current}
    _note(context, current)
    return await _write_changed(tx, tenant_id, new, current, context)


async def recompute_all(tx: Tx, tenant_id: str, mapping: RoleMapping, *, context: dict[str, Any] | None = None) -> int:
    """Recompute every SCIM-derived user's roles after the mapping (or the SCIM toggle) changed.

    ``idp_groups`` is set-based: one statement joins memberships with the mapping table in the
    database, one more finds users holding roles the mapping no longer gives, and only rows whose
    roles differ are written. ``idp_attribute`` pages through SCIM-provisioned users. ``portal``
    keeps whatever roles users hold now: administrators take over from there.
    """
    if mapping.source == "portal":
        return 0
    default = normalize(mapping.default_roles)
    if mapping.source == "idp_groups":
        computed = await tx.member_group_roles(tenant_id, mapping.pairs())
        stale = await tx.role_derived_users(tenant_id, roles_not=default)
        current = dict(stale)
        missing = [uid for uid in computed if uid not in current]
        current.update(await tx.get_user_roles(tenant_id, missing))
        new = {uid: normalize(computed.get(uid, ())) or default for uid in current}
        _note(context, current)
        return await _write_changed(tx, tenant_id, new, current, context)
    changed = 0
    after: int | None = None
    while True:
        page = await tx.query_users(
            tenant_id, Query(where="r.provisioned_by = ?", params=["scim"], limit=_PAGE, after_seq=after, count_total=False)
        )
        if not page.rows:
            return changed
        current = {row.id: row.roles for row in page.rows}
        new = {row.id: roles_for_attribute(mapping, row.data) for row in page.rows}
        _note(context, current)
        changed += await _write_changed(tx, tenant_id, new, current, context)
        after = page.rows[-1].seq


# the provisioning listener ----------------------------------------------------------------------------
async def role_listener(tx: Tx, tenant: TenantRow, change: Change, context: dict[str, Any]) -> None:
    """Service listener: keep stored roles in step with SCIM data, in the change's own transaction."""
    # The request read its tenant before the transaction began; read the mapping again inside it so
    # a mapping change committed in between (and recomputed set-based) is never undone by stale rules.
    mapping = mapping_of(await tx.get_tenant(tenant.id) or tenant)
    if change.resource_type == "User":
        if change.action == "deleted":
            return
        # The service hands over the roles stored before the change (a new user has none).
        previous = list(context.get("before_roles") or [])
        if mapping.source == "idp_attribute":
            roles = roles_for_attribute(mapping, change.resource or {})
            await tx.set_user_roles(tenant.id, {change.resource_id: roles})
            _note(context, [change.resource_id])
            _note_changed(context, {change.resource_id: (previous, roles)} if roles != previous else {})
        elif change.action == "created" and mapping.default_roles:
            # A new SCIM user is in no group yet; portal-managed tenants hand out their starting roles too.
            roles = normalize(mapping.default_roles)
            await tx.set_user_roles(tenant.id, {change.resource_id: roles})
            _note(context, [change.resource_id])
            _note_changed(context, {change.resource_id: (previous, roles)})
        return
    if mapping.source != "idp_groups" or not mapping.group_roles:
        return
    gid = change.resource_id
    if change.action == "deleted":
        before = context.get("before") or {}
        if mapping.maps_group(gid, before.get("displayName")):
            members = [m.value for m in await tx.list_members(tenant.id, gid) if m.type == "User"]
            await recompute_users(tx, tenant.id, mapping, members, exclude_group=gid, context=context)
        return
    if change.action == "created":
        name = (change.resource or {}).get("displayName")
        if mapping.maps_group(gid, name):
            members = [m.value for m in await tx.list_members(tenant.id, gid) if m.type == "User"]
            await recompute_users(tx, tenant.id, mapping, members, context=context)
        return
    affected = await _affected_by_group_update(tx, tenant.id, mapping, gid, context)
    if affected is None:
        await recompute_all(tx, tenant.id, mapping, context=context)
    elif affected:
        await recompute_users(tx, tenant.id, mapping, affected, context=context)


async def _affected_by_group_update(
    tx: Tx, tenant_id: str, mapping: RoleMapping, gid: str, context: dict[str, Any]
) -> list[str] | None:
    """The users a group PUT/PATCH can have changed the roles of; None when only a full recompute can tell.

    The service reports the exact membership delta (``member_delta``) and the documents before and
    after (``before_data``/``after_data``), so only members that came or went are recomputed, plus
    every current member when a rename moved the group in or out of the mapping.
    """
    before, after = context.get("before_data"), context.get("after_data")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    delta = context.get("member_delta")
    moved = list(delta.added) + list(delta.removed) if delta is not None else []
    old_name, new_name = before.get("displayName"), after.get("displayName")
    if old_name != new_name and (mapping.maps_group(gid, old_name) or mapping.maps_group(gid, new_name)):
        members = [m.value for m in await tx.list_members(tenant_id, gid) if m.type == "User"]
        return members + moved
    if not mapping.maps_group(gid, new_name):
        return []
    return moved


__all__ = [
    "RECOMPUTED_KEY",
    "ROLES_CHANGED_KEY",
    "SOURCES",
    "RoleMapping",
    "attribute_values",
    "mapping_of",
    "normalize",
    "recompute_all",
    "recompute_users",
    "role_listener",
    "roles_for_attribute",
    "roles_for_groups",
]
