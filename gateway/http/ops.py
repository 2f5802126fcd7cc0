"""Operations endpoints: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics`` (Prometheus).

All three are unauthenticated (``/metrics`` takes its own bearer token when ``metrics_token`` is
set), cheap, and left out of the request log (the edge middleware passes them straight through).
They answer by themselves and never raise, so they need nothing from the middleware.
"""

from __future__ import annotations

import asyncio
import hmac

import orjson
from aiohttp import web

from gateway.http.appkeys import gateway_key, metrics_key
from gateway.store.migrations import migration_scripts

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_READY_TIMEOUT_S = 2.0
_expected_versions: web.AppKey[frozenset[int]] = web.AppKey("expected_migrations_key", frozenset)


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers: no I/O."""
    return _json(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers and every migration this build knows is applied; 503 with the reason otherwise."""
    store = request.app[gateway_key].store
    try:
        async def versions() -> set[int]:
            async with store.read() as r:
                return await r.schema_versions()

        applied = await asyncio.wait_for(versions(), _READY_TIMEOUT_S)
    except asyncio.TimeoutError:
        return _json(503, {"status": "unavailable", "detail": f"database did not answer within {_READY_TIMEOUT_S:g} s"})
    except Exception as exc:
        return _json(503, {"status": "unavailable", "detail": f"database error: {type(exc).__name__}"})
    pending = sorted(request.app[_expected_versions] - applied)
    if pending:
        return _json(503, {"status": "unavailable", "detail": f"migrations pending: {', '.join(map(str, pending))}"})
    return _json(200, {"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    m = request.app[metrics_key]
    if not m.enabled:
        return _json(404, {"error": "not_found", "detail": "metrics are disabled (SCIM_GATEWAY_METRICS_ENABLED)"})
    token = request.app[gateway_key].settings.metrics_token
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            m.count_auth_failure("metrics")
            return web.Response(status=401, body=orjson.dumps({"error": "unauthorized", "detail":
                                "send 'Authorization: Bearer <metrics token>'"}), content_type="application/json",
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    from gateway.metrics import CONTENT_TYPE

    body = await m.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def setup_routes(app: web.Application) -> None:
    store = app[gateway_key].store
    app[_expected_versions] = frozenset(v for v, _ in migration_scripts(store.dialect))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
