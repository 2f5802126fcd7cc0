"""Per-tenant custom schema extensions: the resource types a tenant's requests are served with.

A tenant declares extensions (RFC 7643 §7 schema documents, validated by
:mod:`gateway.identity.extensions`); here they become :class:`ResourceType` objects that the rest of the
core uses exactly like the built-in ones, so a declared extension is validated on write, stored,
projected, filtered and sorted with no code of its own.

The hot path pays nothing for tenants without extensions (``schema_version`` 0: the built-in types,
no query) and one dict lookup for the others: :class:`SchemaCache` keys its entries by the tenant's
``schema_version``, which every declaration change bumps in the same transaction. Every request
already reads the tenant row to authenticate, so a change made by any process is seen by every
process on its next request, with no message between them.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from gateway.core.schema import ResourceType, attributes_of, group_type, user_type
from gateway.store.base import SchemaRow, Store, TenantRow

__all__ = ["SchemaCache", "TenantTypes", "build_types", "builtin_types"]


@dataclass(frozen=True, slots=True)
class TenantTypes:
    """What one tenant's requests are served with: ``types`` by name and the declared schema documents."""

    version: int
    types: dict[str, ResourceType]
    documents: tuple[dict[str, Any], ...] = ()
    declared: frozenset[str] = field(default_factory=frozenset)  # declared extension URNs
    # lowercased names of declared writeOnly attributes and sub-attributes: redacted wherever requests are logged
    secret_names: frozenset[str] = field(default_factory=frozenset)


def _extend(base: ResourceType, rows: list[SchemaRow]) -> ResourceType:
    if not rows:
        return base
    extensions = dict(base.extensions)
    required = set(base.required_extensions)
    unique = list(base.unique)
    for row in rows:
        attrs = extensions[row.urn] = attributes_of(row.document)
        if row.required:
            required.add(row.urn)
        unique.extend((row.urn, a) for a in attrs.values() if a.uniqueness != "none" and not a.is_complex)
    return ResourceType(
        name=base.name,
        endpoint=base.endpoint,
        schema=base.schema,
        description=base.description,
        attributes=base.attributes,
        extensions=extensions,
        required_extensions=frozenset(required),
        unique=tuple(unique),
    )


def builtin_types() -> TenantTypes:
    return _BUILTIN


def build_types(rows: list[SchemaRow], version: int) -> TenantTypes:
    """The resource types for a tenant whose declarations are ``rows``."""
    if not rows:
        return TenantTypes(version, _BUILTIN.types)
    by_type: dict[str, list[SchemaRow]] = {}
    for row in rows:
        by_type.setdefault(row.resource_type, []).append(row)
    types = {name: _extend(rt, by_type.get(name, [])) for name, rt in _BUILTIN.types.items()}
    secret = {a["name"].lower() for r in rows for top in r.document["attributes"]
              for a in (top, *top.get("subAttributes", ())) if a.get("mutability") == "writeOnly"}
    return TenantTypes(version, types, tuple(r.document for r in rows), frozenset(r.urn for r in rows), frozenset(secret))


_BUILTIN = TenantTypes(0, {"User": user_type(), "Group": group_type()})


class SchemaCache:
    """Each tenant's :class:`TenantTypes`, reloaded when the tenant row shows a newer ``schema_version``.

    Bounded (least recently used tenants go first); concurrent misses for one tenant share one load.
    """

    def __init__(self, store: Store, *, size: int = 2048) -> None:
        self.store = store
        self.size = size
        self._entries: OrderedDict[str, TenantTypes] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Future[TenantTypes]] = {}

    async def types_for(self, tenant: TenantRow) -> TenantTypes:
        version = tenant.schema_version
        if version == 0:
            return _BUILTIN
        hit = self._entries.get(tenant.id)
        if hit is not None and hit.version == version:
            self._entries.move_to_end(tenant.id)
            return hit
        key = (tenant.id, version)
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[TenantTypes] = asyncio.get_running_loop().create_future()
        self._loading[key] = fut
        try:
            async with self.store.read() as r:
                rows = await r.list_tenant_schemas(tenant.id)
            built = build_types(rows, version)
            current = self._entries.get(tenant.id)
            if current is None or current.version <= version:
                self._entries[tenant.id] = built
                self._entries.move_to_end(tenant.id)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
            fut.set_result(built)
            return built
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, an unwaited future must not warn
            raise
        finally:
            del self._loading[key]
