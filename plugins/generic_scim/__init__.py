"""The generic SCIM 2.0 plugin: strict RFC 7644, for any client that is not a known IdP.

It accepts no quirk the RFC forbids: it adds no normaliser, so the core's validation and errors
(RFC 7644 §3.12 ``scimType`` plus a ``detail`` naming the attribute and what was expected) are
exactly what a client developer sees. It answers ``scim_identify_client`` last (``trylast``),
so every request on an ``auto`` tenant finds a handler.

It is also the template for a new IdP plugin:

1. copy this package and rename it (``NAME`` = entry-point name = tenant ``idp`` value);
2. make ``scim_identify_client`` return ``NAME`` only for your IdP's requests (drop ``trylast``);
3. add the ``scim_normalize_*`` hooks your IdP needs, each citing the vendor doc in its docstring;
4. register the entry point ``[project.entry-points.scim_gateway] <name> = "<package>"``;
5. record the vendor's payloads in ``tests/samples`` and replay them (``docs/testing_plugins.md``).
"""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.selftest.sequence import load as load_sequence
from gateway.types import ScimRequest, Tenant

NAME = "generic"


@hookimpl(trylast=True)
def scim_identify_client(request: ScimRequest, tenant: Tenant) -> str | None:
    """Claim every request no other IdP plugin recognised (RFC 7644 clients in general)."""
    return NAME


@hookimpl
def scim_selftest_sequence(idp: str) -> dict[str, Any] | None:
    """A plain RFC 7644 client (``selftest.json``): discovery, user create/read/replace/patch,
    group membership, delete; each expectation cites the RFC section it rests on."""
    return load_sequence(__name__) if idp == NAME else None
