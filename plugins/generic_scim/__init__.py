"""The generic SCIM 2.0 plugin: strict RFC 7644, for any client that is not Okta or Entra.

It accepts no quirk the RFC forbids; the core's validation and errors are what a client
developer sees. It answers ``scim_identify_client`` last, so every request finds a handler.
It is also the template for a new IdP plugin: copy this package, rename it, register the entry
point, and add the normalisers your IdP needs.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.types import ScimRequest, Tenant

NAME = "generic"


@hookimpl(trylast=True)
def scim_identify_client(request: ScimRequest, tenant: Tenant) -> str | None:
    return NAME
