"""What the change feed costs the write path, and how fast webhooks are delivered.

    python bench/events.py [--requests N] [--rounds R] [--concurrency C] [--postgres DSN]

For each backend it starts two real ``scim-gateway serve`` processes on fresh databases, the same
build with ``SCIM_GATEWAY_EVENTS_ENABLED`` on and off, and times, round after round alternating
the two, N user creates and N one-member group PATCHes (add one member to a group) over HTTP with
C concurrent clients; then the same writes one at a time through the SCIM service in this
process (no HTTP and no other process in the way), timing every call and taking the median, the figure
least disturbed by other load on a shared machine. It prints each operation's median time per
request, on and off, and the ratio (on / off; the target is < 1.25). Then it measures delivery: with a webhook endpoint disabled,
N users are created; the endpoint is enabled and the time until a local aiohttp receiver has
answered 2xx to all N events gives deliveries per second (one endpoint, so in sequence order, one
at a time). Nothing is asserted; this is a script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.events.endpoints import WebhookCreate, create_webhook  # noqa: E402
from gateway.identity.tenants import create_api_key, create_tenant  # noqa: E402
from gateway.store import open_store  # noqa: E402

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ADMIN = "adm_bench_" + "x" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare(database: str, webhook_url: str | None = None) -> dict[str, Any]:
    store = open_store(database)
    await store.open()
    try:
        tenant = await create_tenant(store, "Bench", scim_enabled=True)
        key = (await create_api_key(store, tenant.id, "bench")).key
        hook = None
        if webhook_url:
            hook = await create_webhook(store, tenant.id, WebhookCreate(url=webhook_url))
        return {"tenant": tenant.id, "key": key, "hook": hook}
    finally:
        await store.close()


class Server:
    def __init__(self, database: str, *, events: bool, log: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "SCIM_GATEWAY_DATABASE": database, "SCIM_GATEWAY_LOG_LEVEL": "WARNING",
               "SCIM_GATEWAY_EVENTS_ENABLED": "true" if events else "false", "SCIM_GATEWAY_ADMIN_TOKEN": ADMIN,
               "SCIM_GATEWAY_WEBHOOK_POLL_SECONDS": "0.05",
               # the change feed is measured here, not the limiter: both builds run unthrottled
               "SCIM_GATEWAY_RATE_LIMIT_PER_SECOND": "0"}
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port)], env=env,
                                     stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)

    async def ready(self) -> None:
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


async def timed(n: int, concurrency: int, fn: Any) -> float:
    """Seconds per request for ``n`` calls of ``fn(i)`` over ``concurrency`` workers."""
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await fn(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.perf_counter() - start) / n


async def write_path(backend: str, database: Any, args: argparse.Namespace, log: Path) -> dict[str, tuple[float, float]]:
    setups = {}
    servers = {}
    for events in (True, False):
        db = database(f"{'on' if events else 'off'}")
        setups[events] = await prepare(db)
        servers[events] = Server(db, events=events, log=log)
    try:
        for s in servers.values():
            await s.ready()
        results: dict[str, dict[bool, list[float]]] = {"create": {True: [], False: []}, "patch": {True: [], False: []}}
        sessions = {e: aiohttp.ClientSession(headers={"Authorization": f"Bearer {setups[e]['key']}",
                                                      "Content-Type": "application/scim+json"})
                    for e in servers}
        try:
            bases = {e: f"http://127.0.0.1:{servers[e].port}/scim/v2/{setups[e]['tenant']}" for e in servers}
            groups: dict[bool, str] = {}
            for e in servers:
                async with sessions[e].post(bases[e] + "/Groups", json={"schemas": [GROUP], "displayName": "G"}) as r:
                    groups[e] = (await r.json())["id"]
            made: dict[bool, list[str]] = {True: [], False: []}
            for rnd in range(args.rounds + 1):  # round 0 warms up and is not counted
                for e in (True, False) if rnd % 2 else (False, True):
                    http, base = sessions[e], bases[e]

                    async def create(i: int, e: bool = e, http: Any = http, base: str = base) -> None:
                        async with http.post(base + "/Users", json={"schemas": [USER], "userName": f"r{rnd}-{i}"}) as r:
                            assert r.status == 201, await r.text()
                            made[e].append((await r.json())["id"])

                    async def patch(i: int, e: bool = e, http: Any = http, base: str = base) -> None:
                        uid = made[e][i]
                        body = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}
                        async with http.patch(f"{base}/Groups/{groups[e]}", json=body) as r:
                            assert r.status in (200, 204), await r.text()

                    made[e].clear()
                    c = await timed(args.requests, args.concurrency, create)
                    p = await timed(args.requests, args.concurrency, patch)
                    if rnd:
                        results["create"][e].append(c)
                        results["patch"][e].append(p)
        finally:
            for sess in sessions.values():
                await sess.close()
        return {op: (statistics.median(r[True]), statistics.median(r[False])) for op, r in results.items()}
    finally:
        for s in servers.values():
            s.stop()


async def core_cost(database: Any, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """The same two writes through the SCIM service in this process (no HTTP, one at a time)."""
    from gateway.plugin_manager import PluginHost
    from gateway.runtime import Gateway
    from gateway.settings import Settings

    gws: dict[bool, Any] = {}
    tenants: dict[bool, Any] = {}
    groups: dict[bool, str] = {}
    for events in (True, False):
        db = database(f"core-{'on' if events else 'off'}")
        setup = await prepare(db)
        settings = Settings(database=db, events_enabled=events, public_url="https://scim.example.test")
        store = open_store(db)
        await store.open()
        gw = Gateway(settings, store, PluginHost(load_entrypoints=False))
        gws[events] = gw
        async with store.read() as r:
            tenants[events] = await r.get_tenant(setup["tenant"])
        g = await gw.service.create(tenants[events], gw.service.types["Group"], {"schemas": [GROUP], "displayName": "G"},
                                    context={"client": "generic"})
        groups[events] = g.body["id"]
    results: dict[str, dict[bool, list[float]]] = {"create": {True: [], False: []}, "patch": {True: [], False: []}}
    try:
        # Call by call, alternating the two builds (and which goes first), so load from anything
        # else on the machine falls on both alike.
        for rnd in range(args.rounds + 1):
            ids: dict[bool, list[str]] = {True: [], False: []}
            for i in range(args.requests):
                for e in (True, False) if (rnd + i) % 2 else (False, True):
                    svc, tenant = gws[e].service, tenants[e]
                    t0 = time.perf_counter()
                    out = await svc.create(tenant, svc.types["User"], {"schemas": [USER], "userName": f"c{rnd}-{i}"},
                                           context={"client": "generic"})
                    if rnd:
                        results["create"][e].append(time.perf_counter() - t0)
                    ids[e].append(out.body["id"])
            for i in range(args.requests):
                for e in (True, False) if (rnd + i) % 2 else (False, True):
                    svc, tenant = gws[e].service, tenants[e]
                    t0 = time.perf_counter()
                    await svc.patch(tenant, svc.types["Group"], groups[e],
                                    {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members",
                                                                         "value": [{"value": ids[e][i]}]}]},
                                    context={"client": "generic"})
                    if rnd:
                        results["patch"][e].append(time.perf_counter() - t0)
    finally:
        for gw in gws.values():
            await gw.store.close()
    return {op: (statistics.median(r[True]), statistics.median(r[False])) for op, r in results.items()}


async def delivery_rate(database: Any, args: argparse.Namespace, log: Path) -> float:
    got = 0
    done = asyncio.Event()
    n = args.deliveries

    async def hook(request: web.Request) -> web.Response:
        nonlocal got
        await request.read()
        got += 1
        if got >= n:
            done.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    db = database("delivery")
    setup = await prepare(db, f"http://127.0.0.1:{port}/hook")
    server = Server(db, events=True, log=log)
    try:
        await server.ready()
        admin = {"Authorization": f"Bearer {ADMIN}"}
        api = f"http://127.0.0.1:{server.port}/api/v1/tenants/{setup['tenant']}/webhooks/{setup['hook']['id']}"
        async with aiohttp.ClientSession() as http:
            async with http.patch(api, json={"enabled": False}, headers=admin) as r:
                assert r.status == 200, await r.text()
            headers = {"Authorization": f"Bearer {setup['key']}", "Content-Type": "application/scim+json"}
            base = f"http://127.0.0.1:{server.port}/scim/v2/{setup['tenant']}"

            async def create(i: int) -> None:
                async with http.post(base + "/Users", json={"schemas": [USER], "userName": f"d{i}"}, headers=headers) as r:
                    assert r.status == 201

            await timed(n, args.concurrency, create)
            start = time.perf_counter()
            async with http.patch(api, json={"enabled": True}, headers=admin) as r:
                assert r.status == 200
            await asyncio.wait_for(done.wait(), timeout=600)
            return n / (time.perf_counter() - start)
    finally:
        server.stop()
        await runner.cleanup()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=100, help="requests per operation per round")
    p.add_argument("--rounds", type=int, default=20, help="rounds, alternating on and off (short rounds, so load "
                                                         "changes on a shared machine hit both alike)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--deliveries", type=int, default=1000, help="events delivered in the delivery-rate run")
    p.add_argument("--service-only", action="store_true", help="skip the HTTP and delivery measurements")
    p.add_argument("--postgres", help="also run on this PostgreSQL database (fresh schemas, dropped after)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scim-gateway-bench-events-"))
    log = tmp / "servers.log"
    backends: list[tuple[str, Any]] = [("sqlite", lambda label: str(tmp / f"{label}.db"))]
    schemas: list[str] = []
    if args.postgres:
        import asyncpg

        # One fresh schema per server (a search_path in the URL reaches asyncpg as a server setting).
        urls: dict[str, str] = {}
        conn = await asyncpg.connect(args.postgres)
        try:
            for label in ("on", "off", "delivery", "core-on", "core-off"):
                schema = f"bench_events_{label}_{uuid.uuid4().hex[:8]}"
                await conn.execute(f'CREATE SCHEMA "{schema}"')
                schemas.append(schema)
                urls[label] = f"{args.postgres}{'&' if '?' in args.postgres else '?'}search_path={schema}"
        finally:
            await conn.close()
        backends.append(("postgres", urls.__getitem__))
    print(f"{args.requests} requests x {args.rounds} rounds per operation, {args.concurrency} concurrent clients")
    print(f"{'backend':10} {'operation':28} {'events on':>12} {'events off':>12} {'ratio':>7}")
    try:
        for name, database in backends:
            runs = [("service", core_cost)] if args.service_only else [("HTTP", write_path), ("service", core_cost)]
            for where, measure in runs:
                costs = await (measure(database, args) if where == "service" else measure(name, database, args, log))
                for op, label in (("create", "user create"), ("patch", "1-member group PATCH")):
                    on, off = costs[op]
                    print(f"{name:10} {label + ' (' + where + ')':28} {on * 1000:9.3f} ms {off * 1000:9.3f} ms "
                          f"{on / off:7.3f}", flush=True)
            if args.service_only:
                continue
            rate = await delivery_rate(database, args, log)
            print(f"{name:10} {'webhook deliveries':28} {rate:9.0f} /s  (one endpoint, {args.deliveries} events)",
                  flush=True)
    finally:
        if schemas:
            conn = await asyncpg.connect(args.postgres)
            try:
                for schema in schemas:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()
        print(f"(server logs: {log})")


if __name__ == "__main__":
    asyncio.run(main())
