"""Okta's SCIM 2.0 client.

Sources cited by the normalisers below (samples in ``plugins/okta/tests/samples`` replay each one):

- REF: Okta, "Okta and SCIM Version 2.0" (SCIM 2.0 protocol reference),
  https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20
- SPEC: Okta, "Test your SCIM API" (Okta SCIM 2.0 spec test),
  https://developer.okta.com/docs/guides/scim-provisioning-integration-prepare/main/#test-your-scim-api
- HELP: Okta Support, "Custom SCIM attribute is not available to map and is not sent to SCIM",
  https://support.okta.com/help/s/article/custom-scim-attribute-is-not-available-to-map-and-is-not-sent-to-scim

Most of Okta's traffic is plain RFC 7644 that the core handles as it does for every client:
the pre-create ``userName eq`` lookup (case-insensitive, RFC 7643 ``caseExact: false``), 409 on
a duplicate, PUT echoing read-only ``id``/``groups``/``meta`` (ignored, RFC 7643 §7), member
objects without ``type``, integer paging fields, ``password`` never stored nor returned
(``returned: never``). What is Okta-only is normalised here.
"""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.selftest.sequence import load as load_sequence
from gateway.types import Client, ScimRequest, Tenant

NAME = "okta"


@hookimpl
def scim_identify_client(request: ScimRequest, tenant: Tenant) -> str | None:
    """REF: Okta sends ``User-Agent: Okta SCIM Client 1.0.0`` on every request; SPEC's Runscope
    suite sends ``OKTA SCIM Integration``. Both start with "okta", in any case."""
    if request.headers.get("user-agent", "").lstrip().lower().startswith("okta"):
        return NAME
    return None


def _list_extension_urns(payload: dict[str, Any]) -> None:
    """REF examples list only the core URN in ``schemas`` even when Okta sends the enterprise
    extension or an app attribute's "External namespace" (HELP: e.g.
    ``urn:ietf:params:scim:schemas:custom:Space``). RFC 7643 §3 wants every extension present in
    ``schemas``, so each extension object's URN is added."""
    schemas = payload.get("schemas")
    if not isinstance(schemas, list):
        return
    listed = {s.lower() for s in schemas if isinstance(s, str)}
    for key, value in payload.items():
        if isinstance(key, str) and key[:4].lower() == "urn:" and isinstance(value, dict) and key.lower() not in listed:
            schemas.append(key)
            listed.add(key.lower())


@hookimpl
def scim_normalize_resource(client: Client, request: ScimRequest, payload: dict[str, Any]) -> None:
    """Okta POST/PUT bodies (REF "Create the User", "Update the User", HELP).

    - extension objects whose URN is missing from ``schemas`` get it listed (see above), so
      custom-namespace attributes are stored and returned instead of refused;
    - ``groups: []`` (REF sends it on create and echoes it on PUT) is dropped: group membership is
      managed through ``/Groups``, and ``groups`` is readOnly (RFC 7643 §4.1.2).
    """
    _list_extension_urns(payload)
    for key in [k for k in payload if isinstance(k, str) and k.lower() == "groups"]:
        del payload[key]


@hookimpl
def scim_normalize_patch(client: Client, request: ScimRequest, operations: list[dict[str, Any]]) -> None:
    """Okta PATCH operations (REF "Update a specific Group name", "Update a specific User (PATCH)").

    Okta renames a group (and repeats it with every membership change) with a no-path
    ``replace`` whose value carries the group's ``id`` next to ``displayName``. ``id`` is
    readOnly; the echoed copy is dropped so only ``displayName`` is applied. No-path
    deactivation (``{"active": false}``) is plain RFC 7644 §3.5.2.3 and needs nothing here.
    """
    for op in operations:
        if not isinstance(op, dict) or op.get("path"):
            continue
        value = op.get("value")
        if isinstance(value, dict):
            for key in [k for k in value if isinstance(k, str) and k.lower() == "id"]:
                if request.resource_id is None or value[key] == request.resource_id:
                    del value[key]


@hookimpl
def scim_selftest_sequence(idp: str) -> dict[str, Any] | None:
    """The sequence Okta plays, from REF and SPEC (``selftest.json``, next to ``tests/samples``; each
    step names the sample it mirrors): Test API Credentials, the pre-create lookup, create, 409,
    PUT profile push, PATCH deactivation, Push Groups, import paging."""
    return load_sequence(__name__) if idp == NAME else None
