"""Microsoft Entra ID's provisioning service (the "Azure AD SCIM client").

Sources cited by the normalisers below (samples in ``plugins/entra/tests/samples`` replay each one):

- TUT: "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID",
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
- KI: "Known issues and resolutions with SCIM 2.0 protocol compliance of the Microsoft Entra user
  provisioning service" (flag ``aadOptscim062020``),
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
- CA: "Customize application attributes" (section "Provisioning a role to a SCIM app"),
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/customize-application-attributes
- REFCODE: Microsoft's validator payloads, ``AzureAD/SCIMReferenceCode`` (``Microsoft.SCIM.PlaywrightTests/json/``).

What the RFC requires of every server (case-insensitive attribute names and ``op`` values,
``excludedAttributes``, ``null`` as "unassigned") is the core's job and is not repeated here.
Every normaliser turns an Entra shape into the RFC 7644 shape, so the result is valid for a
strict core; none of them does I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway import hookimpl
from gateway.selftest.sequence import load as load_sequence
from gateway.types import Client, ScimRequest, Tenant

NAME = "entra"

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# TUT "Create Group": Entra lists this URI next to the core Group URN (KI calls it fixed for the
# "scim" job in Dec 2018; the current tutorial still shows it).
MS_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
# TUT Example 2: the enterprise URN misspelt without the colon before "User".
_BAD_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0user"
# KI: the flag is appended to the Tenant URL, so it arrives as a query parameter.
FLAG_PARAMS = frozenset({"aadoptscim062020", "azureadscimpatch2017"})
# Third-party SCIM servers match this User-Agent prefix (e.g. GitHub's SCIM API treats
# "Microsoft Azure AD SCIM provisioning" as Entra; Microsoft documents no User-Agent, so it is a hint only).
_UA_MARKERS = ("microsoft azure ad scim", "azure ad scim provisioning", "microsoft entra")
_OP_KEYS = frozenset({"op", "path", "value"})
_BOOLEAN_NAMES = frozenset({"active", "primary"})
_STRING_BOOL = {"true": True, "false": False}
_BOOL_IN_FILTER = re.compile(r'(\bprimary\s+eq\s+)"(true|false)"', re.IGNORECASE)
# compare operator followed by an unquoted token that is not a JSON literal (TUT Example 1).
_UNQUOTED = re.compile(
    r'(?P<head>\b(?:eq|ne|co|sw|ew|gt|ge|lt|le)\s+)(?P<val>(?!(?:true|false|null)\b)(?![-\d])[^\s"()\[\]]+)',
    re.IGNORECASE,
)


# -- identification ------------------------------------------------------------------------


def _looks_like_entra(request: ScimRequest) -> bool:
    ua = request.headers.get("user-agent", "").lower()
    if any(m in ua for m in _UA_MARKERS):
        return True
    if any(k.lower() in FLAG_PARAMS for k in request.query):
        return True
    body = request.body
    if not isinstance(body, dict):
        return False
    schemas = body.get("schemas")
    if isinstance(schemas, list) and any(isinstance(s, str) and s.lower() in (MS_GROUP_SCHEMA.lower(), _BAD_ENTERPRISE) for s in schemas):
        return True
    ops = next((v for k, v in body.items() if isinstance(k, str) and k.lower() == "operations"), None)
    if isinstance(ops, list):
        for op in ops:
            if isinstance(op, dict) and op.get("op") in ("Add", "Replace", "Remove"):
                return True  # KI: the legacy job capitalises ops; no other known client does
    return False


@hookimpl
def scim_identify_client(request: ScimRequest, tenant: Tenant) -> str | None:
    """Recognise Entra's provisioning service.

    Microsoft documents no User-Agent (TUT shows only ``Authorization`` and ``Content-Type``), and
    a public report says Test Connection arrived with none at all (kortix-ai/suna PR #7297,
    "Entra omitted User-Agent"). So, in order: a User-Agent containing ``Microsoft Azure AD SCIM
    provisioning`` (the string third-party SCIM servers match, e.g. GitHub's SCIM API); the
    ``aadOptscim062020`` flag that KI tells admins to append to the Tenant URL; then shapes only
    Entra sends (the Microsoft ADSCIM group schema URI and TUT's misspelt enterprise URN in
    ``schemas``, KI's capitalised ``Add``/``Replace``/``Remove``). Requests with no signal (a
    plain GET) fall through to ``generic``, which reads them the same way; admins who want every
    Entra fix on every request set the tenant's IdP to ``entra``.
    """
    return NAME if _looks_like_entra(request) else None


# -- queries ---------------------------------------------------------------------------------


def _quote(match: re.Match[str]) -> str:
    return f'{match.group("head")}{json.dumps(match.group("val"))}'


@hookimpl
def scim_normalize_query(client: Client, request: ScimRequest, query: dict[str, str]) -> None:
    """Drop the KI feature flags from the query and quote unquoted filter values.

    KI: ``?aadOptscim062020`` on the Tenant URL reaches every request as a query parameter; it
    selects Entra's behaviour and means nothing to the gateway. TUT Example 1 queries
    ``filter=externalId eq jyoung``: an unquoted value is not in RFC 7644 §3.4.2.2's grammar, so
    it becomes ``externalId eq "jyoung"``.
    """
    for key in [k for k in query if k.lower() in FLAG_PARAMS]:
        del query[key]
    for key in [k for k in query if k.lower() == "filter"]:
        flt = query[key]
        if isinstance(flt, str):
            query[key] = _quote_unquoted(flt)


def _quote_unquoted(flt: str) -> str:
    out, pos = [], 0
    # leave quoted strings alone: only rewrite the text between them
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"', flt):
        out.append(_UNQUOTED.sub(_quote, flt[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_UNQUOTED.sub(_quote, flt[pos:]))
    return "".join(out)


# -- values shared by POST/PUT and PATCH -------------------------------------------------------


def _leaf(path: str) -> str:
    """The attribute a key or path ends in: ``primary`` for ``emails[type eq "work"].primary``,
    ``active`` for ``urn:ietf:params:scim:schemas:core:2.0:User:active``."""
    return re.split(r"[.:]", re.sub(r"\[[^\]]*\]", "", path))[-1].strip()


def _fix_booleans(value: Any, name: str | None = None) -> Any:
    """KI: the legacy job sends booleans as "True"/"False"; CA's role objects carry "primary": "True".
    The core is strict (RFC 7643 §2.3.2), so every ``active``/``primary`` string, whether a plain,
    dotted or URN-qualified key, becomes a JSON boolean here."""
    if isinstance(value, str) and name is not None and _leaf(name).lower() in _BOOLEAN_NAMES:
        return _STRING_BOOL.get(value.lower(), value)
    if isinstance(value, dict):
        for k in list(value):
            value[k] = _fix_booleans(value[k], k if isinstance(k, str) else None)
        return value
    if isinstance(value, list):
        return [_fix_booleans(v, name) for v in value]
    return value


def _decode_role(item: Any) -> Any:
    """CA: AppRoleAssignmentsComplex PATCHes send a role's ``value`` as a JSON-encoded
    ``{"id", "value", "displayName"}``; POSTs send ``displayName`` where RFC 7643 has ``display``."""
    if not isinstance(item, dict):
        return item
    raw = item.get("value")
    if isinstance(raw, str) and raw.lstrip().startswith("{"):
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict) and isinstance(decoded.get("value"), str):
            item = {k: v for k, v in item.items() if k != "value"}
            item["value"] = decoded["value"]
            if isinstance(decoded.get("displayName"), str):
                item.setdefault("display", decoded["displayName"])
    return _display_name_to_display(item)


def _display_name_to_display(item: dict[str, Any]) -> dict[str, Any]:
    if "displayName" in item:
        name = item.pop("displayName")
        if isinstance(name, str):
            item.setdefault("display", name)
    return item


def _manager(value: Any) -> Any:
    """TUT Example 5 sends ``manager`` as ``[{"$ref", "value"}]``; the schema example as a bare id.
    RFC 7643 §4.3 makes it complex and the core refuses both shapes, so both become ``{"value"}``."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        return {"value": value}
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not (k == "$ref" and v is None)}
    return value


def _clean_members(items: Any) -> Any:
    """TUT "Add Members": member items carry ``"$ref": null``; REFCODE uses ``displayName``."""
    if not isinstance(items, list):
        items = [items] if isinstance(items, dict) else items
    if isinstance(items, list):
        return [_display_name_to_display({k: v for k, v in i.items() if not (k == "$ref" and v is None)})
                if isinstance(i, dict) else i for i in items]
    return items


def _fix_nested_manager(ext: dict[str, Any]) -> None:
    """``manager`` inside an enterprise extension object (POST body, or a PATCH value for the URN)."""
    for sub in [s for s in ext if isinstance(s, str) and s.lower() == "manager"]:
        ext[sub] = _manager(ext[sub])


def _is_attr(path: str, name: str) -> bool:
    """Whether ``path`` names attribute ``name`` (plain or URN-qualified, any case)."""
    low = path.strip().lower()
    return low == name or low.endswith(":" + name)


# -- resources (POST/PUT) ----------------------------------------------------------------------


@hookimpl
def scim_normalize_resource(client: Client, request: ScimRequest, payload: dict[str, Any]) -> None:
    """Turn Entra's POST/PUT bodies into RFC 7643 ones.

    - ``"True"``/``"False"`` strings for ``active``/``primary`` (KI) become booleans;
    - ``schemas``: the Microsoft ADSCIM group URI (TUT "Create Group") is dropped, TUT Example 2's
      misspelt enterprise URN is corrected, and the URNs of custom extension attributes are listed:
      CA ("Provisioning a custom extension attribute to a SCIM compliant application") names them
      ``urn:ietf:params:scim:schemas:extension:<CustomExtensionName>:2.0:User:<CustomAttribute>`` and notes
      that Entra's SCIM client does not send the custom extension's schema URN in ``schemas`` (also
      reported in MicrosoftDocs/azure-docs issue #65648), so the extension object and the flat
      ``<URN>:<attribute>`` key both arrive with their URN unlisted (RFC 7643 §3 wants it listed);
    - enterprise ``department``/``manager`` sent at the top level (TUT Example 2) move into the
      enterprise extension; ``manager`` as a bare id or a one-element array becomes ``{"value"}``;
    - roles: JSON-encoded values are decoded and ``displayName`` becomes ``display`` (CA);
    - members: ``"$ref": null`` is dropped and ``displayName`` becomes ``display`` (TUT, REFCODE).
    """
    _fix_booleans(payload)
    schemas = payload.get("schemas")
    if isinstance(schemas, list):
        fixed: list[Any] = []
        for s in schemas:
            if isinstance(s, str) and s.lower() == MS_GROUP_SCHEMA.lower():
                continue
            if isinstance(s, str) and s.lower() == _BAD_ENTERPRISE:
                s = ENTERPRISE
            if s not in fixed:
                fixed.append(s)
        payload["schemas"] = schemas = fixed
    for key in [k for k in payload if isinstance(k, str) and k.lower() in ("department", "manager")]:
        value = payload.pop(key)
        if value is not None and request.resource_type == "User":
            ext = payload.setdefault(ENTERPRISE, {})
            if isinstance(ext, dict):
                ext.setdefault(key.lower(), value)
    for key, value in payload.items():
        if not isinstance(key, str):
            continue
        low = key.lower()
        if low == ENTERPRISE.lower() and isinstance(value, dict):
            _fix_nested_manager(value)
        elif _is_attr(low, "manager"):
            payload[key] = _manager(value)  # urn:...:enterprise:2.0:User:manager
        elif low == "roles" and isinstance(value, list):
            payload[key] = [_decode_role(r) for r in value]
        elif low == "members" and value is not None:
            payload[key] = _clean_members(value)
    if isinstance(schemas, list):
        _list_extension_urns(payload, schemas)


def _list_extension_urns(payload: dict[str, Any], schemas: list[Any]) -> None:
    """CA: add to ``schemas`` every extension URN the body uses but does not list, whether as an object
    (``"urn:...:2.0:User": {...}``) or as a flat attribute key (``"urn:...:2.0:User:costCenter": "4130"``,
    whose URN is the key up to its last colon, CA's ``<extension>:2.0:User:<attribute>`` pattern)."""
    listed = [s.lower() for s in schemas if isinstance(s, str)]
    for key, value in payload.items():
        if not isinstance(key, str) or key[:4].lower() != "urn:":
            continue
        low = key.lower()
        if any(low == u or low.startswith(u + ":") for u in listed):
            continue  # listed already, or an attribute of a listed URN
        urn = key if isinstance(value, dict) else key.rsplit(":", 1)[0]
        if urn.count(":") < 2:
            continue  # not a URN with an attribute after it: leave it for the core to refuse
        schemas.append(urn)
        listed.append(urn.lower())


# -- PATCH -------------------------------------------------------------------------------------


def _split_pathless(op: str, value: dict[str, Any]) -> list[dict[str, Any]]:
    """KI (aadOptscim062020): a no-path replace whose keys are paths (``name.givenName``,
    ``urn:...:User:employeeNumber``). RFC 7644 §3.5.2.3 wants attribute names there, so every
    key that is a path becomes its own operation; plain keys stay in one no-path operation."""
    plain: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    for key, v in value.items():
        if not isinstance(key, str):
            continue
        is_urn = key[:4].lower() == "urn:"
        if (is_urn and not isinstance(v, dict)) or (not is_urn and "." in key):
            out.append({"op": op, "path": key, "value": v})
        else:
            plain[key] = v
    if plain:
        out.insert(0, {"op": op, "value": plain})
    return out


def _normalize_op(raw: dict[str, Any]) -> list[dict[str, Any]]:
    op = {k.lower(): v for k, v in raw.items() if isinstance(k, str) and k.lower() in _OP_KEYS}
    kind = op.get("op")
    if isinstance(kind, str):
        op["op"] = kind = kind.lower()
    path = op.get("path")
    value = op.get("value")
    if path is None or (isinstance(path, str) and not path.strip()):
        if isinstance(value, dict):
            value = _fix_booleans(value)
            for key in list(value):
                if isinstance(key, str) and _is_attr(key, "manager"):
                    value[key] = _manager(value[key])
                elif isinstance(key, str) and key.lower() == ENTERPRISE.lower() and isinstance(value[key], dict):
                    _fix_nested_manager(value[key])
            # split-off path operations get the path fixes too (``roles[primary eq "True"].value`` keys)
            return [o for part in _split_pathless(str(kind), value)
                    for o in (_normalize_op(part) if "path" in part else [part])]
        return [op]
    if not isinstance(path, str):
        return [op]
    path = _BOOL_IN_FILTER.sub(lambda m: m.group(1) + m.group(2).lower(), path)
    op["path"] = path
    head = path.split("[", 1)[0]
    leaf = _leaf(path)
    if "value" in op:
        op["value"] = value = _fix_booleans(value, leaf)
    if _is_attr(head, "manager") and "value" in op:
        op["value"] = _manager(value)
    elif head.strip().lower() == ENTERPRISE.lower() and isinstance(value, dict):
        _fix_nested_manager(value)
    elif _is_attr(head, "members") and "[" not in path and "value" in op:
        items = _clean_members(value)
        if kind == "remove" and isinstance(items, list):
            # TUT "Remove Members" / KI legacy: remove "members" with a value array removes only the
            # listed members; RFC 7644 §3.5.2.2 expresses that as one filtered path per member.
            ids = [i.get("value") for i in items if isinstance(i, dict)]
            if ids and all(isinstance(i, str) and i for i in ids):
                return [{"op": "remove", "path": f"{head}[value eq {json.dumps(i)}]"} for i in ids]
        op["value"] = items
    elif _is_attr(head, "roles") and "[" not in path and isinstance(value, list) and kind == "add":
        # CA: AppRoleAssignmentsComplex only ever adds, with JSON-encoded values. Adding by a filtered
        # path makes a role that is already assigned (same value) an update, never a duplicate.
        out = []
        for item in (_decode_role(i) for i in value):
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                return [op]
            flt = f"{head}[value eq {json.dumps(item['value'])}]"
            for sub, sub_value in item.items():
                if sub != "value":
                    out.append({"op": "add", "path": f"{flt}.{sub}", "value": sub_value})
            if len(item) == 1:
                out.append({"op": "add", "path": f"{flt}.value", "value": item["value"]})
        return out
    elif _is_attr(head, "roles") and "[" not in path and isinstance(value, list):
        op["value"] = [_decode_role(i) for i in value]
    return [op]


@hookimpl
def scim_normalize_patch(client: Client, request: ScimRequest, operations: list[dict[str, Any]]) -> None:
    """Turn Entra's PATCH operations into RFC 7644 §3.5.2 ones.

    - keys other than ``op``/``path``/``value`` are dropped (REFCODE adds ``"name": "addMember"``);
    - ``"True"``/``"False"`` for ``active``/``primary`` become booleans, in values and in the
      filter ``roles[primary eq "True"]`` (KI legacy job; CA SingleAppRoleAssignment);
    - a no-path value with dotted or URN-qualified keys is split into path operations (KI flag);
    - ``manager`` as a bare id or ``[{"$ref", "value"}]`` becomes ``{"value"}`` (TUT Example 5);
    - ``Remove`` of ``members`` with a value array becomes ``members[value eq "..."]`` removes,
      and ``"$ref": null`` is dropped from member items (TUT "Add/Remove Members");
    - role values sent as JSON-encoded strings are decoded; an ``Add`` of roles becomes filtered
      adds so an already assigned role is not duplicated (CA AppRoleAssignmentsComplex).
    """
    rewritten: list[dict[str, Any]] = []
    for raw in operations:
        rewritten.extend(_normalize_op(raw) if isinstance(raw, dict) else [raw])
    operations[:] = rewritten


@hookimpl
def scim_selftest_sequence(idp: str) -> dict[str, Any] | None:
    """The sequence TUT documents (``selftest.json``, next to ``tests/samples``; each step names the
    sample it mirrors): Test Connection, match by query, create, PATCH updates, disable, groups,
    members added and removed, delete."""
    return load_sequence(__name__) if idp == NAME else None
