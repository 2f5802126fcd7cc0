"""``POST /api/v1/tenants/{tenant_id}/selftest``: the self-test, run by the admin API against the tenant.

Body ``{"idp": "<plugin name>", "keep": false}``. Authorised like every tenant route of the admin API
(the admin token, or a portal session scoped to this tenant: the portal's "Test connection"). The gateway plays the IdP's sequence over HTTP
against itself, on the address the admin request arrived on (so it goes through the same stack
an IdP's requests do), with a temporary API key revoked when the run ends. The answer is the
report: ``passed``, ``counts``, ``kept`` and ``steps`` (one object per step, as ``--json`` prints).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from gateway import selftest
from gateway.http.access import admin_route
from gateway.http.admin import PREFIX, _body
from gateway.http.appkeys import gateway_key
from gateway.identity import management


class SelftestRequest(management.StrictModel):
    idp: str = Field(min_length=1, max_length=64)
    keep: bool = False


def _listening(request: web.Request) -> str:
    """The base URL of the socket this request came in on: reachable from this very process."""
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sock, tuple) and len(sock) >= 2:
        host = str(sock[0])
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://[{host}]:{sock[1]}" if ":" in host else f"http://{host}:{sock[1]}"
    s = request.app[gateway_key].settings
    return f"http://127.0.0.1:{s.port}"


async def run_selftest(request: web.Request) -> Any:
    body = await _body(request, SelftestRequest)
    gw = request.app[gateway_key]
    tenant_id = request.match_info["tenant_id"]
    try:
        sequence = selftest.find_sequence(gw.plugins, body.idp)
    except selftest.UnknownIdpError as exc:
        raise management.AdminError(400, "unknown_idp", str(exc)) from None
    except selftest.SequenceError as exc:
        raise management.AdminError(500, "invalid_sequence", str(exc)) from None
    try:
        report = await selftest.run_on_tenant(gw.store, sequence, _listening(request), tenant_id, keep=body.keep)
    except LookupError:
        raise management.AdminError(404, "not_found", f"no tenant {tenant_id}") from None
    return report.to_json()


def setup_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "/tenants/{tenant_id}/selftest", admin_route(run_selftest))
