"""Google Workspace auto-provisioning: an example third-party scim-gateway plugin.

Google publishes no description of the SCIM requests its auto-provisioning sends to a custom
SAML app, so every sample in ``tests/samples`` is CONSTRUCTED from third-party observations:

- SNIPE: GitHub issue grokability/snipe-it#12642, "SCIM using Google Workspace not working",
  https://github.com/grokability/snipe-it/issues/12642 (a user's scim.log of live Google traffic);
- AUTHN: authn.sh docs, "SCIM 2.0 with Google Workspace",
  https://authn-sh-docs.pages.dev/guides/scim/google-workspace/ (the ``/Users?count=1`` probe).

Google's lookups (``userName eq`` with ``startIndex=1`` and no ``count``) and its
``application/json`` content type are plain RFC 7644 and need no plugin code.
"""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.types import Client, ScimRequest, Tenant

NAME = "google"

SCIM1_CORE = "urn:scim:schemas:core:1.0"
SCIM1_ENTERPRISE = "urn:scim:schemas:extension:enterprise:1.0"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = {"User": "urn:ietf:params:scim:schemas:core:2.0:User", "Group": "urn:ietf:params:scim:schemas:core:2.0:Group"}


@hookimpl
def scim_identify_client(request: ScimRequest, tenant: Tenant) -> str | None:
    """SNIPE: Google's create lists the SCIM 1.0 core URI next to the 2.0 one; no other supported
    IdP sends SCIM 1.0 URIs. A User-Agent naming Google is accepted too (unverified: Google does
    not document one). Lookups carry no signal and are served by ``generic`` the same way."""
    if "google" in request.headers.get("user-agent", "").lower():
        return NAME
    body = request.body
    if isinstance(body, dict) and isinstance(body.get("schemas"), list):
        if any(isinstance(s, str) and s.lower().startswith("urn:scim:schemas:") for s in body["schemas"]):
            return NAME
    return None


@hookimpl
def scim_normalize_resource(client: Client, request: ScimRequest, payload: dict[str, Any]) -> None:
    """SNIPE: ``schemas: ["urn:scim:schemas:core:1.0", "urn:ietf:params:scim:schemas:core:2.0:User"]``.

    The SCIM 1.0 core URI is dropped (the 2.0 core URN is added if Google sent only the 1.0 one),
    and a SCIM 1.0 enterprise extension becomes the 2.0 enterprise extension, key and URI.
    """
    schemas = payload.get("schemas")
    if not isinstance(schemas, list):
        return
    out: list[Any] = []
    for s in schemas:
        low = s.lower() if isinstance(s, str) else s
        if low == SCIM1_CORE:
            s = CORE.get(request.resource_type or "", None)
        elif low == SCIM1_ENTERPRISE:
            s = ENTERPRISE
        if s is not None and s not in out:
            out.append(s)
    payload["schemas"] = out
    for key in [k for k in payload if isinstance(k, str) and k.lower() == SCIM1_ENTERPRISE]:
        payload.setdefault(ENTERPRISE, payload.pop(key))
