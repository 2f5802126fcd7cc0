"""Microsoft Entra ID's provisioning service (Microsoft "Develop and plan provisioning for a SCIM endpoint")."""

from __future__ import annotations

from gateway import hookimpl
from gateway.types import ScimRequest, Tenant

NAME = "entra"


@hookimpl
def scim_identify_client(request: ScimRequest, tenant: Tenant) -> str | None:
    """Entra sends no documented User-Agent; its traffic is recognised by its shapes (see quirks)."""
    ua = request.headers.get("user-agent", "").lower()
    if "azure" in ua or "microsoft" in ua or "aad" in ua:
        return NAME
    return None
