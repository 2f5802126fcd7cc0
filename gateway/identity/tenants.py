"""Tenants and their API keys.

Keys carry 256 bits of randomness behind a recognisable prefix, are shown once, and are stored
only as SHA-256. Lookup is by hash (an indexed equality) and the stored hash is then compared in
constant time, so neither the database nor the comparison leaks a timing signal about the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from types import MappingProxyType
from typing import Collection

import orjson

from gateway.clock import now
from gateway.store.authcache import AuthCache
from gateway.store.base import ApiKeyRow, Store, TenantRow
from gateway.types import Tenant

KEY_PREFIX = "scimgw_"
AUTO = "auto"
_SLUG = re.compile(r"[^a-z0-9]+")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def plugin_tenant(row: TenantRow) -> Tenant:
    """The plugin-facing, read-only view of a stored tenant (plugins never hold the store's row)."""
    # A fresh copy per request, so no plugin can change what the next request sees. The settings are
    # JSON (a database column): an orjson round trip copies them ~10x faster than copy.deepcopy.
    settings = orjson.loads(orjson.dumps(row.settings)) if row.settings else {}
    return Tenant(row.id, row.name, row.idp, row.scim_enabled, MappingProxyType(settings))


def new_tenant_id(name: str) -> str:
    slug = _SLUG.sub("-", name.lower()).strip("-")[:32] or "tenant"
    return f"{slug}-{secrets.token_hex(4)}"


@dataclass(slots=True)
class NewKey:
    row: ApiKeyRow
    key: str


def check_idp(idp: str, installed: Collection[str]) -> None:
    """``idp`` must be ``auto`` or the name of an installed IdP plugin (built-in or third-party)."""
    if idp != AUTO and idp not in installed:
        raise ValueError(f"idp must be one of {', '.join([AUTO, *sorted(installed)])}, not {idp!r}")


async def create_tenant(
    store: Store,
    name: str,
    *,
    idp: str = AUTO,
    scim_enabled: bool = False,
    tenant_id: str | None = None,
    installed_idps: Collection[str] | None = None,
) -> TenantRow:
    """Create a tenant. With ``installed_idps`` given, ``idp`` is checked against it."""
    if installed_idps is not None:
        check_idp(idp, installed_idps)
    row = TenantRow(
        id=tenant_id or new_tenant_id(name),
        name=name,
        idp=idp,
        scim_enabled=scim_enabled,
        log_successful_events=False,
        role_mapping={"source": "portal"},
        settings={},
        created=now(),
    )
    async with store.write() as tx:
        await tx.insert_tenant(row)
    return row


async def create_api_key(store: Store, tenant_id: str, name: str) -> NewKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)  # 32 bytes = 256 bits
    row = ApiKeyRow(
        id="key_" + secrets.token_hex(8),
        tenant_id=tenant_id,
        name=name,
        prefix=key[: len(KEY_PREFIX) + 4],
        created=now(),
        last_used=None,
        revoked=None,
    )
    async with store.write() as tx:
        if await tx.get_tenant(tenant_id) is None:
            raise LookupError(f"no tenant {tenant_id!r}")
        await tx.insert_api_key(row, hash_key(key))
    return NewKey(row, key)


async def authenticate(store: Store, tenant_id: str, presented: str) -> tuple[ApiKeyRow, TenantRow] | None:
    """The key and its tenant when ``presented`` is a live key of ``tenant_id``; None for every other case alike."""
    digest = hash_key(presented)
    cache: AuthCache | None = getattr(store, "auth_cache", None)
    found = cache.get(digest) if cache is not None else None
    if found is None:
        version = cache.current() if cache is not None else 0
        async with store.read() as r:
            found = await r.find_api_key_tenant(digest)
        if cache is not None:
            cache.put(digest, found, version)
    if found is None:
        return None
    row, stored, tenant = found
    if not hmac.compare_digest(stored, digest) or row.revoked is not None:
        return None
    if not hmac.compare_digest(row.tenant_id.encode(), tenant_id.encode()):
        return None
    return row, tenant
