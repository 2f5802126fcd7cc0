"""Okta's SCIM 2.0 client (Okta "SCIM 2.0 protocol reference")."""

from __future__ import annotations

from gateway import hookimpl
from gateway.types import ScimRequest, Tenant

NAME = "okta"


@hookimpl
def scim_identify_client(request: ScimRequest, tenant: Tenant) -> str | None:
    """Okta identifies itself: ``User-Agent: Okta SCIM Client 1.0.0``."""
    if request.headers.get("user-agent", "").lower().startswith("okta"):
        return NAME
    return None
