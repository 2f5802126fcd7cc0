"""The self-test: play an IdP's documented provisioning sequence against a SCIM endpoint.

- :mod:`gateway.selftest.sequence`: the sequence format plugins ship (``scim_selftest_sequence``);
- :mod:`gateway.selftest.runner`: the player and its report.

This module finds a plugin's sequence and runs it against one of this gateway's tenants with a
temporary API key (revoked afterwards), or against any SCIM URL and token.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from gateway.clock import now
from gateway.identity.tenants import create_api_key
from gateway.selftest.runner import Report, Target, render, run
from gateway.selftest.sequence import Sequence, SequenceError, parse
from gateway.store import Store

__all__ = ["Report", "Sequence", "SequenceError", "Target", "UnknownIdpError", "find_sequence", "render", "run",
           "run_on_tenant", "temporary_key", "tenant_target"]

TEMPORARY_KEY_NAME = "selftest (temporary, revoked when the run ends)"


class UnknownIdpError(LookupError):
    """No installed plugin contributes a sequence for that IdP name."""


def find_sequence(plugins: Any, idp: str) -> Sequence:
    """The validated sequence the plugin named ``idp`` contributes (``plugins``: a :class:`PluginHost`)."""
    document = plugins.hook.scim_selftest_sequence(idp=idp)
    if document is None:
        offered = sorted(n for n in plugins.names() if plugins.hook.scim_selftest_sequence(idp=n) is not None)
        raise UnknownIdpError(f"no installed plugin has a self-test sequence for idp {idp!r}; "
                              f"choose one of: {', '.join(offered) or 'none installed'}")
    try:
        return parse(document)
    except SequenceError as exc:
        raise SequenceError(f"the {idp!r} plugin's sequence is invalid: {exc}") from None


@contextlib.asynccontextmanager
async def temporary_key(store: Store, tenant_id: str) -> AsyncIterator[str]:
    """An API key for ``tenant_id`` that lives only as long as the block (revoked on exit, whatever happens)."""
    new = await create_api_key(store, tenant_id, TEMPORARY_KEY_NAME)
    try:
        yield new.key
    finally:
        async with store.write() as tx:
            await tx.revoke_api_key(tenant_id, new.row.id, now())


def tenant_target(base_url: str, tenant_id: str, key: str) -> Target:
    """The SCIM base of ``tenant_id`` on a gateway listening at ``base_url`` (``http://127.0.0.1:8080``)."""
    return Target(f"{base_url.rstrip('/')}/scim/v2/{tenant_id}", key)


async def run_on_tenant(store: Store, sequence: Sequence, listening: str, tenant_id: str, *, keep: bool = False) -> Report:
    """Run ``sequence`` over HTTP against ``tenant_id`` of a gateway listening at ``listening``, with a
    temporary key; :class:`LookupError` when there is no such tenant."""
    async with store.read() as r:
        if await r.get_tenant(tenant_id) is None:
            raise LookupError(f"no tenant {tenant_id!r}")
    async with temporary_key(store, tenant_id) as key:
        return await run(sequence, tenant_target(listening, tenant_id, key), keep=keep)
