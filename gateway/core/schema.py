"""RFC 7643 schemas as data: the documents ``/Schemas`` serves and the attribute index the core uses.

Attribute names are resolved case-insensitively (RFC 7643 §2.1); URN-qualified names
(``urn:...:enterprise:2.0:User:employeeNumber``) resolve against the resource type's extensions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    type: str
    multi_valued: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    required: bool = False
    schema: str = ""
    sub_attributes: dict[str, "Attribute"] = field(default_factory=dict)

    def sub(self, name: str) -> "Attribute | None":
        return self.sub_attributes.get(name.lower())

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"


def _attribute(doc: dict[str, Any], schema: str) -> Attribute:
    subs = {s["name"].lower(): _attribute(s, schema) for s in doc.get("subAttributes", ())}
    return Attribute(
        name=doc["name"],
        type=doc["type"],
        multi_valued=doc.get("multiValued", False),
        case_exact=doc.get("caseExact", False),
        mutability=doc.get("mutability", "readWrite"),
        returned=doc.get("returned", "default"),
        uniqueness=doc.get("uniqueness", "none"),
        required=doc.get("required", False),
        schema=schema,
        sub_attributes=subs,
    )


# RFC 7643 §3.1: attributes common to every resource, not part of any schema document.
_META_SUBS = {
    "resourcetype": Attribute("resourceType", "string", case_exact=True, mutability="readOnly"),
    "created": Attribute("created", "dateTime", mutability="readOnly"),
    "lastmodified": Attribute("lastModified", "dateTime", mutability="readOnly"),
    "location": Attribute("location", "reference", case_exact=True, mutability="readOnly"),
    "version": Attribute("version", "string", case_exact=True, mutability="readOnly"),
}
COMMON_ATTRIBUTES = {
    "id": Attribute("id", "string", case_exact=True, mutability="readOnly", returned="always", uniqueness="server"),
    "externalid": Attribute("externalId", "string", case_exact=True),
    "meta": Attribute("meta", "complex", mutability="readOnly", sub_attributes=_META_SUBS),
    "schemas": Attribute("schemas", "reference", multi_valued=True, case_exact=True, returned="always"),
}


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """``urn`` is set for an extension attribute; ``sub`` for ``attr.sub`` paths."""

    attribute: Attribute
    sub: Attribute | None = None
    urn: str | None = None

    @property
    def leaf(self) -> Attribute:
        return self.sub or self.attribute


@dataclass
class ResourceType:
    name: str
    endpoint: str
    schema: str
    description: str
    attributes: dict[str, Attribute]
    extensions: dict[str, dict[str, Attribute]]  # canonical URN -> attributes
    required_extensions: frozenset[str] = frozenset()
    # (extension URN, attribute) of declared extension attributes with uniqueness server/global:
    # checked by the service on write (core attributes are unique through the store's indexes).
    unique: tuple[tuple[str, Attribute], ...] = ()

    def __post_init__(self) -> None:
        self._urns = {u.lower(): u for u in [self.schema, *self.extensions]}

    def canonical_urn(self, urn: str) -> str | None:
        return self._urns.get(urn.lower())

    def split_urn(self, path: str) -> tuple[str | None, str]:
        """Split ``urn:...:User:attr.sub`` into (canonical urn, ``attr.sub``); plain paths return (None, path)."""
        if not path[:4].lower() == "urn:":
            return None, path
        low = path.lower()
        for lurn, urn in sorted(self._urns.items(), key=lambda kv: -len(kv[0])):
            if low == lurn:
                return urn, ""
            if low.startswith(lurn + ":"):
                return urn, path[len(lurn) + 1 :]
        return None, path

    def resolve(self, path: str) -> ResolvedPath | None:
        """Resolve ``attr``, ``attr.sub`` or a URN-qualified path; None when unknown."""
        urn, rest = self.split_urn(path)
        if path[:4].lower() == "urn:" and urn is None:
            return None
        head, _, sub_name = rest.partition(".")
        if urn is None or urn == self.schema:
            attrs = self.attributes
            ext = None
        else:
            attrs = self.extensions[urn]
            ext = urn
        attr = attrs.get(head.lower())
        if attr is None and urn is None:
            # An unqualified name that only an extension defines (``manager``, ``department``) resolves to
            # it when exactly one extension does: RFC 7644 §3.10 lets clients omit a URN that is unambiguous.
            owners = [(u, a[head.lower()]) for u, a in self.extensions.items() if head.lower() in a]
            if len(owners) == 1:
                ext, attr = owners[0]
        if attr is None:
            return None
        if not sub_name:
            return ResolvedPath(attr, None, ext)
        sub = attr.sub(sub_name)
        if sub is None:
            return None
        return ResolvedPath(attr, sub, ext)


@lru_cache(maxsize=None)
def schema_document(name: str) -> dict[str, Any]:
    text = resources.files("gateway.core").joinpath("schemas", f"{name}.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def attributes_of(doc: dict[str, Any]) -> dict[str, Attribute]:
    """The attribute index (lowercased names) of an RFC 7643 §7 schema document."""
    return {a["name"].lower(): _attribute(a, doc["id"]) for a in doc["attributes"]}


@lru_cache(maxsize=None)
def user_type() -> ResourceType:
    core = schema_document("user")
    ent = schema_document("enterprise_user")
    return ResourceType(
        name="User",
        endpoint="/Users",
        schema=USER_SCHEMA,
        description="User Account",
        attributes={**attributes_of(core), **COMMON_ATTRIBUTES},
        extensions={ENTERPRISE_USER_SCHEMA: attributes_of(ent)},
    )


@lru_cache(maxsize=None)
def group_type() -> ResourceType:
    core = schema_document("group")
    return ResourceType(
        name="Group",
        endpoint="/Groups",
        schema=GROUP_SCHEMA,
        description="Group",
        attributes={**attributes_of(core), **COMMON_ATTRIBUTES},
        extensions={},
    )


def resource_types() -> list[ResourceType]:
    return [user_type(), group_type()]


def all_schema_documents() -> list[dict[str, Any]]:
    return [schema_document("user"), schema_document("group"), schema_document("enterprise_user")]
