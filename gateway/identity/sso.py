"""The SSO sign-in decision (R10, R11): who may sign in, with which roles, and JIT creation.

The application calls this with what the SSO assertion said. The product document's table:

=====================  ==================================================  =============================================
Scenario               SCIM off                                            SCIM on
=====================  ==================================================  =============================================
new user               JIT-created, roles from the role mapping            rejected: ``scim_required_user_not_provisioned``
existing user          roles re-synced from the mapping at every sign-in   roles from the SCIM-managed record
                       (portal-managed: left as they are)                  (the assertion's groups/attributes ignored)
deactivated user       rejected: ``user_deactivated``                      rejected: ``user_deactivated``
=====================  ==================================================  =============================================

Matching is by userName, case-insensitively (the same folded column SCIM uses). JIT users are
rows of the same users table (``provisioned_by = "jit"``), so they are SCIM Users too and an IdP
that later turns SCIM on finds them with its ``userName eq`` lookup. A JIT create is not a SCIM
operation: it writes no ``scim_*`` activity event and fires no ``scim_resource_changed`` hook
(the activity log records what the IdP pushed over SCIM, as the product's Activity tab does); it
is a change to the directory, so the change feed gets ``user.created`` (source ``sso``), and a
re-sync that changes roles gets ``user.roles_changed``, each in the write's own transaction.
A sign-in never updates the profile (name, email): without SCIM the gateway does not own it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from gateway.clock import now
from gateway.core.errors import ScimError
from gateway.core.resource import prepare_write
from gateway.core.schema import USER_SCHEMA, user_type
from gateway.events.outbox import USER_CREATED, USER_ROLES_CHANGED, user_event
from gateway.identity import roles
from gateway.identity.management import AdminError, StrictModel, require_tenant, user_view
from gateway.store.base import ResourceRow, Store, StoreConflict, TenantRow

REJECT_NOT_PROVISIONED = "scim_required_user_not_provisioned"
REJECT_DEACTIVATED = "user_deactivated"

_Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=512)]


class SignInRequest(StrictModel):
    """What the SSO assertion said about the user signing in."""

    userName: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
    email: _Text | None = None
    givenName: _Text | None = None
    familyName: _Text | None = None
    groups: list[_Text] = Field(default_factory=list, max_length=10_000)
    attributes: dict[str, Any] = Field(default_factory=dict)


@dataclass(slots=True)
class Decision:
    """The HTTP status and body of a sign-in decision."""

    status: int
    body: dict[str, Any]

    @property
    def allowed(self) -> bool:
        return self.body.get("decision") == "allow"


def _reject(reason: str, detail: str) -> Decision:
    return Decision(403, {"decision": "reject", "reason": reason, "detail": detail})


def _allow(row: ResourceRow, *, jit: bool, source: str) -> Decision:
    return Decision(200, {"decision": "allow", "jit_created": jit, "roles": list(row.roles), "roles_source": source,
                          "user": user_view(row)})


def assertion_roles(mapping: roles.RoleMapping, req: SignInRequest) -> list[str]:
    """Roles the mapping gives the assertion's groups or attributes (portal-managed: the default roles)."""
    if mapping.source == "idp_groups":
        return roles.roles_for_groups(mapping, req.groups)
    if mapping.source == "idp_attribute":
        return roles.roles_for_attribute(mapping, req.attributes)
    return roles.normalize(mapping.default_roles)


def _jit_row(req: SignInRequest, assigned: list[str]) -> ResourceRow:
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": req.userName, "active": True}
    name = {k: v for k, v in (("givenName", req.givenName), ("familyName", req.familyName)) if v}
    if name:
        body["name"] = name
        body["displayName"] = " ".join(name[k] for k in ("givenName", "familyName") if k in name)
    if req.email:
        body["emails"] = [{"value": req.email, "type": "work", "primary": True}]
    try:
        data = prepare_write(body, user_type()).data
    except ScimError as exc:
        raise AdminError(400, "validation_error", f"cannot create a user from this assertion: {exc.detail}") from None
    ts = now()
    return ResourceRow(id=str(uuid.uuid4()), data=data, version=1, created=ts, last_modified=ts, roles=assigned,
                       provisioned_by="jit")


async def sign_in(store: Store, tenant_id: str, req: SignInRequest) -> Decision:
    """Decide a sign-in for ``tenant_id`` per the table above; creates or re-syncs as it decides."""
    tenant = await require_tenant(store, tenant_id)
    async with store.read() as r:
        user = await r.get_user_by_name(tenant_id, req.userName)
    if user is None:
        if tenant.scim_enabled:
            return _reject(REJECT_NOT_PROVISIONED,
                           "SCIM provisioning is on for this tenant: the user must be provisioned by the IdP before signing in")
        created = await _jit_create(store, tenant, req)
        if created is not None:
            return _allow(created, jit=True, source="role_mapping")
        # Another sign-in created the same userName a moment ago: decide as for a known user.
        async with store.read() as r:
            user = await r.get_user_by_name(tenant_id, req.userName)
        if user is None:  # pragma: no cover - the conflicting row vanished again
            raise AdminError(409, "conflict", "the user changed concurrently; retry the sign-in")
    if not user.active:
        return _reject(REJECT_DEACTIVATED, "the user is deactivated")
    if tenant.scim_enabled:
        return _allow(user, jit=False, source="scim_record")
    mapping = roles.mapping_of(tenant)
    if mapping.source == "portal":
        return _allow(user, jit=False, source="portal")
    wanted = assertion_roles(mapping, req)
    if wanted != user.roles:
        previous = user.roles
        async with store.write() as tx:
            await tx.set_user_roles(tenant_id, {user.id: wanted})
            user.roles = wanted
            tx.emit([user_event(tenant_id, USER_ROLES_CHANGED, user, source="sso", previous_roles=previous)])
    return _allow(user, jit=False, source="role_mapping")


async def _jit_create(store: Store, tenant: TenantRow, req: SignInRequest) -> ResourceRow | None:
    row = _jit_row(req, assertion_roles(roles.mapping_of(tenant), req))
    try:
        async with store.write() as tx:
            await tx.insert_user(tenant.id, row)
            tx.emit([user_event(tenant.id, USER_CREATED, row, source="sso")])
    except StoreConflict:
        return None
    return row


__all__ = ["Decision", "REJECT_DEACTIVATED", "REJECT_NOT_PROVISIONED", "SignInRequest", "assertion_roles", "sign_in"]
