"""Admin actions for per-tenant custom schema extensions: declare (PUT), read, list, delete.

A declaration is an RFC 7643 §7 schema document (``id``, ``name``, ``description``, ``attributes``
with ``type``, ``multiValued``, ``required``, ``caseExact``, ``mutability``, ``returned``,
``uniqueness``, ``canonicalValues``, ``referenceTypes``, ``subAttributes``) plus two gateway members:
``resourceType`` (``User`` or ``Group``; inferred from a URN ending in ``:User`` or ``:Group``) and
``required`` (whether every resource of that type must carry the extension, RFC 7643 §6
``schemaExtensions.required``; default false). Validation is strict: unknown members, wrong JSON
types, characteristics that contradict each other or that this gateway could not honour are refused
with every problem named by its location (``attributes[1].subAttributes[0].type: ...``).

The stored document has every characteristic spelled out (RFC 7643 §2.2 defaults filled in), which is
exactly what the tenant's ``/Schemas`` then serves. Each change bumps the tenant's ``schema_version``
in the same transaction (see :mod:`gateway.core.extensions`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.clock import now
from gateway.core.schema import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, SCHEMA_SCHEMA, USER_SCHEMA
from gateway.core.sqlfilter import extension_present
from gateway.identity.management import AdminError, ScimUrl, _no_tenant, parse
from gateway.store.base import Query, SchemaRow, Store, Tx
from gateway.store.rows import fold

MAX_SCHEMAS_PER_TENANT = 50
MAX_ATTRIBUTES = 200
MAX_SUB_ATTRIBUTES = 100
RESOURCE_TYPES = ("User", "Group")
_CORE_URNS = {"User": USER_SCHEMA, "Group": GROUP_SCHEMA}
# RFC 8141 NID and colon-separated segments, restricted to characters that are safe as JSON keys in
# every SQL dialect's path syntax (no quotes, braces, commas, "?" or backslashes).
_URN = re.compile(r"^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}(:[A-Za-z0-9._-]+)+$")
# RFC 7643 §2.1: ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA.
_ATTRNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_RESERVED_PREFIXES = ("urn:ietf:params:scim:schemas:core:", "urn:ietf:params:scim:api:")

Text = Annotated[str, StringConstraints(max_length=2000)]
Canonical = Union[bool, int, float, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SchemaAttribute(_Strict):
    """One attribute of an RFC 7643 §7 schema; omitted characteristics take the §2.2 defaults."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    type: Literal["string", "boolean", "decimal", "integer", "dateTime", "reference", "complex", "binary"] = "string"
    multiValued: bool = False
    description: Text | None = None
    required: bool = False
    canonicalValues: list[Canonical] | None = Field(None, max_length=500)
    caseExact: bool = False
    mutability: Literal["readOnly", "readWrite", "immutable", "writeOnly"] = "readWrite"
    returned: Literal["always", "never", "default", "request"] = "default"
    uniqueness: Literal["none", "server", "global"] = "none"
    referenceTypes: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(None, max_length=50)
    subAttributes: list["SchemaAttribute"] | None = Field(None, max_length=MAX_SUB_ATTRIBUTES)


class SchemaMeta(BaseModel):
    """``meta`` as GET shows it; readOnly, so ignored when a GET result is PUT back (RFC 7643 §7)."""

    model_config = ConfigDict(extra="allow")


class SchemaDefinition(_Strict):
    """The body of ``PUT /api/v1/tenants/{tenant_id}/schemas/{urn}``: an RFC 7643 §7 schema document."""

    schemas: list[str] | None = None
    id: Annotated[str, StringConstraints(max_length=256)] | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    description: Text | None = None
    attributes: list[SchemaAttribute] = Field(min_length=1, max_length=MAX_ATTRIBUTES)
    resourceType: Literal["User", "Group"] | None = None
    required: bool = False
    meta: SchemaMeta | None = None


# validation ---------------------------------------------------------------------------------------
def check_urn(urn: str) -> str:
    """The URN of a declaration, or a 400 saying what is wrong with it."""
    if len(urn) > 256 or not _URN.match(urn):
        raise AdminError(400, "invalid_schema",
                         f"{urn[:80]!r} is not a usable schema URN: it must look like "
                         "'urn:ietf:params:scim:schemas:extension:<name>:2.0:User' (letters, digits, '.', '_', '-' "
                         "between colons)")
    low = urn.lower()
    if low in (USER_SCHEMA.lower(), GROUP_SCHEMA.lower(), ENTERPRISE_USER_SCHEMA.lower()) or low.startswith(_RESERVED_PREFIXES):
        raise AdminError(400, "invalid_schema", f"{urn!r} is a schema the gateway defines itself (RFC 7643); choose "
                                                "your own extension URN")
    return urn


def _check_canonical(attr: SchemaAttribute, loc: str, errors: list[str]) -> None:
    if attr.canonicalValues is None:
        return
    if attr.type in ("complex", "boolean"):
        errors.append(f"{loc}.canonicalValues: not allowed for type {attr.type!r}")
        return
    want: tuple[type, ...] = {"integer": (int,), "decimal": (int, float)}.get(attr.type, (str,))
    seen: set[Any] = set()
    for i, v in enumerate(attr.canonicalValues):
        if isinstance(v, bool) or not isinstance(v, want):
            errors.append(f"{loc}.canonicalValues[{i}]: must be a {attr.type} value like the attribute, got {v!r:.40}")
        key = fold(v) if isinstance(v, str) and not attr.caseExact else v
        if key in seen:
            errors.append(f"{loc}.canonicalValues[{i}]: {v!r:.40} is listed twice")
        seen.add(key)


def _check_attribute(attr: SchemaAttribute, loc: str, errors: list[str], *, parent: SchemaAttribute | None) -> None:
    if parent is not None and attr.name == "$ref":
        if attr.type != "reference":
            errors.append(f"{loc}.type: the '$ref' sub-attribute must be of type 'reference'")
    elif not _ATTRNAME.match(attr.name):
        errors.append(f"{loc}.name: {attr.name[:60]!r} is not an attribute name (RFC 7643 §2.1: a letter, then "
                      "letters, digits, '-' or '_')")
    if attr.type == "complex":
        if parent is not None:
            errors.append(f"{loc}.type: a sub-attribute cannot be complex (RFC 7643 §2.3.8)")
        elif not attr.subAttributes:
            errors.append(f"{loc}.subAttributes: a complex attribute needs at least one sub-attribute")
    elif attr.subAttributes is not None:
        errors.append(f"{loc}.subAttributes: only a complex attribute has sub-attributes (type is {attr.type!r})")
    if attr.referenceTypes is not None and attr.type != "reference":
        errors.append(f"{loc}.referenceTypes: only for type 'reference'")
    _check_canonical(attr, loc, errors)
    if attr.mutability == "writeOnly" and "returned" in attr.model_fields_set and attr.returned != "never":
        errors.append(f"{loc}.returned: a writeOnly attribute is never returned (RFC 7643 §7); use 'never'")
    if attr.required and attr.mutability == "readOnly":
        errors.append(f"{loc}.required: a readOnly attribute cannot be required, clients could never send it")
    if attr.uniqueness != "none":
        if attr.type in ("complex", "boolean") or attr.multiValued:
            errors.append(f"{loc}.uniqueness: only a single-valued string, number, dateTime, reference or binary "
                          "attribute can be unique")
    if attr.subAttributes:
        _check_names(attr.subAttributes, f"{loc}.subAttributes", errors, parent=attr)


def _check_names(attrs: list[SchemaAttribute], loc: str, errors: list[str], *, parent: SchemaAttribute | None) -> None:
    seen: dict[str, int] = {}
    for i, a in enumerate(attrs):
        here = f"{loc}[{i}]"
        low = a.name.lower()
        if low in seen:
            errors.append(f"{here}.name: {a.name!r} repeats {loc}[{seen[low]}] (names are case-insensitive)")
        else:
            seen[low] = i
        _check_attribute(a, here, errors, parent=parent)


def _full(attr: SchemaAttribute) -> dict[str, Any]:
    """The attribute with every characteristic spelled out, in RFC 7643 §7's order."""
    out: dict[str, Any] = {"name": attr.name, "type": attr.type, "multiValued": attr.multiValued}
    if attr.description is not None:
        out["description"] = attr.description
    out["required"] = attr.required
    if attr.canonicalValues is not None:
        out["canonicalValues"] = list(attr.canonicalValues)
    out["caseExact"] = attr.caseExact
    out["mutability"] = attr.mutability
    out["returned"] = "never" if attr.mutability == "writeOnly" else attr.returned
    out["uniqueness"] = attr.uniqueness
    if attr.type == "reference":
        out["referenceTypes"] = list(attr.referenceTypes or ["external"])
    if attr.subAttributes:
        out["subAttributes"] = [_full(s) for s in attr.subAttributes]
    return out


def resource_type_of(urn: str, body: SchemaDefinition) -> str:
    if body.resourceType is not None:
        return body.resourceType
    tail = urn.rsplit(":", 1)[-1].lower()
    for name in RESOURCE_TYPES:
        if tail == name.lower():
            return name
    raise AdminError(400, "invalid_schema", "resourceType: say which resource type the extension extends, 'User' or "
                                            f"'Group' (the URN {urn!r} does not end in ':User' or ':Group')")


def normalize_definition(urn: str, body: SchemaDefinition) -> tuple[str, dict[str, Any]]:
    """``(resource type, stored document)`` for a valid declaration of ``urn``; a 400 naming every problem otherwise."""
    check_urn(urn)
    errors: list[str] = []
    if body.schemas is not None and [s.lower() for s in body.schemas] != [SCHEMA_SCHEMA.lower()]:
        errors.append(f"schemas: must be [{SCHEMA_SCHEMA!r}] when given")
    if body.id is not None and body.id.lower() != urn.lower():
        errors.append(f"id: {body.id[:80]!r} differs from the URN in the path, {urn!r}")
    _check_names(body.attributes, "attributes", errors, parent=None)
    if errors:
        raise AdminError(400, "invalid_schema", "; ".join(errors))
    rtype = resource_type_of(urn, body)
    doc: dict[str, Any] = {"id": urn}
    if body.name is not None:
        doc["name"] = body.name
    if body.description is not None:
        doc["description"] = body.description
    doc["attributes"] = [_full(a) for a in body.attributes]
    return rtype, doc


def _overlap(urn: str, others: list[SchemaRow], rtype: str) -> str | None:
    """A URN one of whose prefixes is another extension's URN makes ``urn:...:attr`` paths ambiguous."""
    low = urn.lower()
    taken = [_CORE_URNS[rtype], *([ENTERPRISE_USER_SCHEMA] if rtype == "User" else []),
             *(o.urn for o in others if o.resource_type == rtype and o.urn.lower() != low)]
    for other in taken:
        ol = other.lower()
        if low.startswith(ol + ":") or ol.startswith(low + ":"):
            return other
    return None


# views ------------------------------------------------------------------------------------------
def schema_view(row: SchemaRow, scim_url: ScimUrl, tenant_id: str) -> dict[str, Any]:
    """The declaration as GET shows it: the stored RFC 7643 §7 document plus the gateway members; PUT takes it back."""
    return {
        "schemas": [SCHEMA_SCHEMA],
        **row.document,
        "resourceType": row.resource_type,
        "required": row.required,
        "meta": {
            "resourceType": "Schema",
            "created": row.created,
            "lastModified": row.last_modified,
            "location": f"{scim_url(tenant_id)}/Schemas/{row.urn}",
        },
    }


# actions ----------------------------------------------------------------------------------------
async def _tenant_in(tx: Tx, tenant_id: str) -> None:
    if await tx.get_tenant(tenant_id) is None:
        raise _no_tenant(tenant_id)


async def resources_with(tx: Tx, dialect: str, tenant_id: str, rtype: str, urn: str) -> int:
    """How many of the tenant's ``rtype`` resources carry values of extension ``urn``."""
    q = Query(where=extension_present(urn, dialect), limit=0)  # type: ignore[arg-type]
    page = await (tx.query_users if rtype == "User" else tx.query_groups)(tenant_id, q)
    return page.total


async def put_schema(store: Store, tenant_id: str, urn: str, raw: Any, scim_url: ScimUrl) -> tuple[int, dict[str, Any]]:
    """Declare or replace extension ``urn``; returns (201 or 200, the view)."""
    body: SchemaDefinition = parse(SchemaDefinition, raw)
    rtype, doc = normalize_definition(urn, body)
    async with store.write() as tx:
        await _tenant_in(tx, tenant_id)
        existing = await tx.list_tenant_schemas(tenant_id)
        current = next((s for s in existing if s.urn.lower() == urn.lower()), None)
        if current is None and len(existing) >= MAX_SCHEMAS_PER_TENANT:
            raise AdminError(409, "too_many_schemas", f"a tenant declares at most {MAX_SCHEMAS_PER_TENANT} extensions")
        clash = _overlap(urn, existing, rtype)
        if clash is not None:
            raise AdminError(409, "schema_conflict", f"{urn!r} and {clash!r} nest inside each other, so "
                                                     f"'<urn>:<attribute>' paths would be ambiguous")
        if current is not None and current.resource_type != rtype:
            n = await resources_with(tx, store.dialect, tenant_id, current.resource_type, current.urn)
            if n:
                raise AdminError(409, "schema_in_use", f"{n} {current.resource_type} resource(s) carry values of "
                                                       f"{current.urn!r}; it cannot move to {rtype} while they do")
        ts = now()
        row = SchemaRow(urn=urn, resource_type=rtype, required=body.required, document=doc,
                        created=current.created if current else ts, last_modified=ts)
        await tx.put_tenant_schema(tenant_id, row)
        await tx.bump_schema_version(tenant_id)
    return (200 if current else 201), schema_view(row, scim_url, tenant_id)


async def get_schema(store: Store, tenant_id: str, urn: str, scim_url: ScimUrl) -> dict[str, Any]:
    async with store.read() as r:
        if await r.get_tenant(tenant_id) is None:
            raise _no_tenant(tenant_id)
        row = await r.get_tenant_schema(tenant_id, urn)
    if row is None:
        raise AdminError(404, "not_found", f"tenant {tenant_id!r} declares no schema {urn!r}")
    return schema_view(row, scim_url, tenant_id)


async def list_schemas(store: Store, tenant_id: str, scim_url: ScimUrl) -> list[dict[str, Any]]:
    async with store.read() as r:
        if await r.get_tenant(tenant_id) is None:
            raise _no_tenant(tenant_id)
        rows = await r.list_tenant_schemas(tenant_id)
    return [schema_view(row, scim_url, tenant_id) for row in rows]


async def delete_schema(store: Store, tenant_id: str, urn: str, *, force: bool = False) -> None:
    """Remove a declaration; refused (409) while resources carry its values, unless ``force``.

    Forcing keeps those values stored: the extension is then undeclared, which is how the gateway
    treats any extension it has no schema for (stored and returned as sent), and declaring it again
    brings typing, filtering and discovery back.
    """
    async with store.write() as tx:
        await _tenant_in(tx, tenant_id)
        row = await tx.get_tenant_schema(tenant_id, urn)
        if row is None:
            raise AdminError(404, "not_found", f"tenant {tenant_id!r} declares no schema {urn!r}")
        n = await resources_with(tx, store.dialect, tenant_id, row.resource_type, row.urn)
        if n and not force:
            raise AdminError(409, "schema_in_use",
                             f"{n} {row.resource_type} resource(s) carry values of {row.urn!r}; remove the values first, "
                             "or delete with force (the values then stay stored as an undeclared extension)")
        await tx.delete_tenant_schema(tenant_id, row.urn)
        await tx.bump_schema_version(tenant_id)


__all__ = [
    "SchemaAttribute",
    "SchemaDefinition",
    "delete_schema",
    "get_schema",
    "list_schemas",
    "normalize_definition",
    "put_schema",
    "schema_view",
]
