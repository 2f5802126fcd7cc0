"""Store operations on every backend: deleting a tenant with all its data in one transaction, schema versions."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.identity import management
from gateway.identity.tenants import authenticate, create_api_key, create_tenant
from gateway.store import Store
from gateway.store.migrations import migration_scripts


async def _seed(store: Store, name: str) -> tuple[str, str]:
    from gateway.core.schema import user_type
    from gateway.core.service import ScimService

    t = await create_tenant(store, name, scim_enabled=True)
    key = await create_api_key(store, t.id, "k")
    svc = ScimService(store, base_url=lambda tid: f"https://x/scim/v2/{tid}")
    for i in range(3):
        await svc.create(t, user_type(), {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"u{i}@{name}.test",
                                     "emails": [{"value": f"u{i}@{name}.test", "primary": True}]})
    return t.id, key.key


async def test_store_delete_tenant_removes_all_rows_and_counts_them(store: Store) -> None:
    doomed, doomed_key = await _seed(store, "doomed")
    kept, kept_key = await _seed(store, "kept")
    out = await management.delete_tenant(store, doomed)
    removed = out["removed"]
    assert removed["tenants"] == 1 and removed["users"] == 3 and removed["user_emails"] == 3 and removed["api_keys"] == 1
    assert await authenticate(store, doomed, doomed_key) is None
    assert await authenticate(store, kept, kept_key) is not None
    async with store.read() as r:
        assert await r.get_tenant(doomed) is None
        assert [t.id for t in await r.list_tenants()] == [kept]
    async with store.write() as tx:
        assert await tx.delete_tenant(doomed) is None


async def test_store_delete_tenant_is_all_or_nothing(store: Store) -> None:
    doomed, key = await _seed(store, "atomic")
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            assert (await tx.delete_tenant(doomed) or {})["users"] == 3
            raise RuntimeError("abort after the deletes")
    assert await authenticate(store, doomed, key) is not None  # rolled back: nothing removed


async def test_store_schema_versions_are_every_migration(store: Store) -> None:
    async with store.read() as r:
        assert await r.schema_versions() == {v for v, _ in migration_scripts(store.dialect)}
    assert isinstance(store.applied_migrations, list)



