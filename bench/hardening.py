"""Hardening benchmarks (issue "Hardening"): big requests must not stall other tenants, and limits cost little.

Measures, over HTTP against the real server (``python -m gateway.cli serve``, SQLite):

1. the time of one group PATCH adding 2,000 / 4,000 / 8,000 / 16,000 (and 20,000) members, and
   its growth per doubling (linear: about 2x);
2. the latency another tenant's GET by id sees while one request adds 20,000 members, against
   the same GETs on an idle server (p50 / p99 / max);
3. the rate limiter's cost on a GET by id: wrk requests/s with the limits on (rate high enough
   never to refuse, so every request pays for the bucket and the address check) against the same
   build with them off (``rate_limit_per_second=0``, ``auth_failure_limit=0``), alternating runs.

A script, not a test: nothing is asserted. Run from the repository root::

    python bench/hardening.py [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from run import Server, free_port, stop_all  # noqa: E402
from seed import sample, seeded  # noqa: E402

from gateway.identity.tenants import create_api_key, create_tenant  # noqa: E402
from gateway.store.sqlite import SqliteStore  # noqa: E402

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SIZES = (2_000, 4_000, 8_000, 16_000, 20_000)


async def _neighbour(db: str) -> tuple[str, str, str]:
    """A second tenant in the same database, with one user: (tenant id, key, user id)."""
    store = SqliteStore(db)
    await store.open()
    try:
        tenant = await create_tenant(store, "Neighbour", idp="generic", scim_enabled=True)
        key = await create_api_key(store, tenant.id, "bench")
    finally:
        await store.close()
    return tenant.id, key.key, ""


def start(db: str, logdir: Path, name: str, **env: str) -> tuple[Server, str]:
    port = free_port()
    server = Server(name, [sys.executable, "-m", "gateway.cli", "--database", db, "serve", "--port", str(port)], port, logdir,
                    env={"SCIM_GATEWAY_LOG_LEVEL": "WARNING", **env})
    server.start()
    return server, f"http://127.0.0.1:{port}"


async def big_patches(base: str, tenant: str, key: str, ids: list[str]) -> dict[int, float]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/scim+json"}
    out: dict[int, float] = {}
    async with aiohttp.ClientSession(headers=headers) as s:
        for n in SIZES:
            times = []
            for r in range(3):
                async with s.post(f"{base}/scim/v2/{tenant}/Groups", json={"schemas": [GROUP], "displayName": f"g{n}-{r}"}) as resp:
                    gid = (await resp.json())["id"]
                body = {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members",
                                                                "value": [{"value": i} for i in ids[:n]]}]}
                t0 = time.perf_counter()
                async with s.patch(f"{base}/scim/v2/{tenant}/Groups/{gid}", json=body) as resp:
                    assert resp.status == 204, (resp.status, await resp.text())
                times.append(time.perf_counter() - t0)
            out[n] = min(times)
    return out


async def _pinger(base: str, tenant: str, key: str, uid: str, stop: asyncio.Event, out: list[float]) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as s:
        while not stop.is_set():
            t0 = time.perf_counter()
            async with s.get(f"{base}/scim/v2/{tenant}/Users/{uid}") as resp:
                await resp.read()
                assert resp.status == 200
            out.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.002)


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


async def neighbour_latency(base: str, big: tuple[str, str, list[str]], small: tuple[str, str, str]) -> dict[str, Any]:
    tenant, key, ids = big
    stop = asyncio.Event()
    idle: list[float] = []
    task = asyncio.create_task(_pinger(base, *small, stop, idle))
    await asyncio.sleep(2)
    stop.set()
    await task
    during: list[float] = []
    stop = asyncio.Event()
    task = asyncio.create_task(_pinger(base, *small, stop, during))
    elapsed = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/scim+json"}
    async with aiohttp.ClientSession(headers=headers) as s:
        for r in range(5):
            async with s.post(f"{base}/scim/v2/{tenant}/Groups", json={"schemas": [GROUP], "displayName": f"n{r}"}) as resp:
                gid = (await resp.json())["id"]
            body = {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids[:20_000]]}]}
            t0 = time.perf_counter()
            async with s.patch(f"{base}/scim/v2/{tenant}/Groups/{gid}", json=body) as resp:
                assert resp.status == 204
            elapsed.append(time.perf_counter() - t0)
    stop.set()
    await task
    return {"idle": idle, "during": during, "patch_s": elapsed}


def wrk(url: str, key: str, duration: int) -> tuple[float, int]:
    """(requests/s, requests) of one wrk run."""
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{duration}s", "-H", f"Authorization: Bearer {key}", url],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    assert m and n, out
    return float(m.group(1)), int(n.group(1))


def guard_micro_us(rounds: int = 200_000) -> float:
    """CPU microseconds the limits add to one authenticated request (address check + token bucket)."""
    from aiohttp.test_utils import make_mocked_request

    from gateway.http.limits import RequestGuard
    from gateway.settings import Settings

    guard = RequestGuard(Settings(rate_limit_per_second=1e9, rate_limit_burst=10**9))
    req = make_mocked_request("GET", "/scim/v2/t/Users/x", headers={"Authorization": "Bearer k"})
    t0 = time.process_time()
    for _ in range(rounds):
        guard.check_address(req)
        guard.admit_key("key", None)
    return (time.process_time() - t0) / rounds * 1e6


def limiter_cost(db: str, logdir: Path, tenant: str, key: str, uid: str, duration: int, rounds: int) -> dict[str, Any]:
    configs = {
        "on": {"SCIM_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000000", "SCIM_GATEWAY_RATE_LIMIT_BURST": "1000000000"},
        "off": {"SCIM_GATEWAY_RATE_LIMIT_PER_SECOND": "0", "SCIM_GATEWAY_AUTH_FAILURE_LIMIT": "0"},
    }
    res: dict[str, Any] = {"on": [], "off": [], "cpu_on": [], "cpu_off": []}
    for r in range(rounds):
        for name in (("off", "on") if r % 2 == 0 else ("on", "off")):
            server, base = start(db, logdir, f"limits-{name}-{r}", **configs[name])
            url = f"{base}/scim/v2/{tenant}/Users/{uid}"
            server.wait_ready(url, {"Authorization": f"Bearer {key}"})
            wrk(url, key, 1)  # warm-up
            cpu0 = server.cpu_seconds()
            rps, n = wrk(url, key, duration)
            res[name].append(rps)
            res[f"cpu_{name}"].append((server.cpu_seconds() - cpu0) / n * 1e6)  # server CPU µs per request
            server.stop()
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "scim-gateway-bench")
    args = ap.parse_args(argv)
    logdir = Path(tempfile.mkdtemp(prefix="hardening-bench-"))
    try:
        s, _ = seeded(args.cache, 20_000, 10)
        work = logdir / "bench.db"
        import shutil

        shutil.copy(s.path, work)
        db = str(work)
        ids = sample(db, s.tenant_id, 20_000, 10, 20_000)["ids"]
        ntenant, nkey, _ = asyncio.run(_neighbour(db))
        server, base = start(db, logdir, "gateway", SCIM_GATEWAY_RATE_LIMIT_PER_SECOND="0")
        server.wait_ready(f"{base}/scim/v2/{s.tenant_id}/ServiceProviderConfig", {"Authorization": f"Bearer {s.api_key}"})

        async def neighbour_user() -> str:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {nkey}"}) as c:
                async with c.post(f"{base}/scim/v2/{ntenant}/Users", json={"schemas": [USER], "userName": "n@example.com"}) as r:
                    return str((await r.json())["id"])

        nuid = asyncio.run(neighbour_user())
        sizes = asyncio.run(big_patches(base, s.tenant_id, s.api_key, ids))
        lat = asyncio.run(neighbour_latency(base, (s.tenant_id, s.api_key, ids), (ntenant, nkey, nuid)))
        server.stop()
        cost = limiter_cost(db, logdir, ntenant, nkey, nuid, args.duration, args.rounds)
    finally:
        stop_all()

    print("\n## One group PATCH adding N members (best of 3)\n")
    print("| members | seconds | x previous size |")
    print("|---:|---:|---:|")
    prev = None
    for n, t in sizes.items():
        print(f"| {n:,} | {t:.3f} | {'' if prev is None else f'{t / prev:.2f}'} |")
        prev = t
    print("\n## Another tenant's GET by id while one request adds 20,000 members (5 PATCHes)\n")
    print("| | requests | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for k in ("idle", "during"):
        xs = lat[k]
        print(f"| {k} | {len(xs)} | {_pct(xs, .5):.1f} | {_pct(xs, .99):.1f} | {max(xs):.1f} |")
    print(f"\n20,000-member PATCH while measured: {', '.join(f'{x:.3f}' for x in lat['patch_s'])} s")
    on, off = statistics.median(cost["on"]), statistics.median(cost["off"])
    print("\n## Rate limiter cost on GET by id (wrk -t2 -c16, median of rounds)\n")
    print(f"limits off: {off:,.0f} req/s {cost['off']}\nlimits on:  {on:,.0f} req/s {cost['on']}")
    print(f"throughput ratio (off / on): {off / on:.3f}x")
    con, coff = statistics.median(cost["cpu_on"]), statistics.median(cost["cpu_off"])
    print(f"server CPU per GET: off {coff:.0f} us, on {con:.0f} us: cost ratio (on / off) {con / coff:.3f}x")
    micro = guard_micro_us()
    print(f"in-process: the limits add {micro:.2f} us of CPU per request ({1 + micro / coff:.4f}x of a GET by id's server CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
