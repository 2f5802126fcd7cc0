"""RFC 7643/7644 conformance: scim2-tester (an independent checker) against a live `scim-gateway serve`.

Every check it makes must pass; a failure prints the check's own explanation.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def _run_checks(url: str, key: str) -> list[Any]:
    with Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        client = SyncSCIMClient(http)
        client.discover()
        return list(check_server(client))


@pytest.mark.slow
# The checker sends its ~500 requests back to back, faster than the default per-key limit (200/s after
# a burst of 400) once the gateway answers in under 5 ms: conformance is the subject here, not the limiter
# (tests/http/test_hardening.py covers that), so this server runs unthrottled.
@pytest.mark.server_env(SCIM_GATEWAY_RATE_LIMIT_PER_SECOND="0")
async def test_conformance_scim2_tester_every_check_passes(server: dict[str, str]) -> None:
    results = await asyncio.to_thread(_run_checks, server["url"], server["key"])
    assert len(results) > 100  # discovery, CRUD of Users and Groups, PATCH per attribute, misc
    failures = [f"{r.title}: {r.reason}" for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    assert failures == []
