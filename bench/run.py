#!/usr/bin/env python
"""scim-gateway benchmark: flat cost at 1,000,000 users, the bare-aiohttp ceiling and the scim2-server peer.

One command (from the repository root, with the project installed in the interpreter):

    python bench/run.py --quick        # small = 1,000 users, large = 100,000 users
    python bench/run.py                # small = 1,000 users, large = 1,000,000 users / 100,000 members

See bench/README.md for what is measured and how. This is a script, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from seed import TITLE_NEEDLES, Seeded, sample, seeded  # noqa: E402

SCENARIOS = ["get_by_id", "username_eq", "title_co", "group_patch"]
SCENARIO_LABELS = {
    "get_by_id": "GET /Users/{id}",
    "username_eq": 'GET /Users?filter=userName eq "…"',
    "title_co": 'GET /Users?filter=title co "…"&count=10',
    "group_patch": "PATCH /Groups/{id} (1 member add/remove)",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# processes ---------------------------------------------------------------------------------------
_RUNNING: list["Server"] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    logdir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **self.env}
        out = open(self.logdir / f"{self.name}.log", "wb")
        self.proc = subprocess.Popen(
            self.cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT), start_new_session=True
        )
        out.close()
        _RUNNING.append(self)

    def wait_ready(self, url: str, headers: dict[str, str], timeout: float = 120.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.logdir / (self.name + '.log')}")
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
                    if r.status == 200:
                        return
            except Exception as exc:  # noqa: BLE001 - still starting
                last = exc
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s: {last}")

    def cpu_seconds(self) -> float:
        """utime + stime of the server process (all its threads), from /proc/<pid>/stat."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own session: the server and any child it made
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def stop_all() -> None:
    while _RUNNING:
        _RUNNING.pop().stop()


def _on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# tools -------------------------------------------------------------------------------------------
def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found: installing the Debian package (apt-get update; apt-get install -y wrk)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is needed: install the Debian package 'wrk' (apt-get install wrk)")
    return path


def ensure_peer_venv(venv: Path) -> Path | None:
    """A separate venv holding scim2-server (dev-only; never a project dependency)."""
    exe = venv / "bin" / "scim2-server"
    if exe.exists():
        return exe
    log(f"creating {venv} with scim2-server (pip install scim2-server)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "scim2-server"], check=True)
    except subprocess.CalledProcessError as exc:
        log(f"could not install scim2-server: {exc}")
        return None
    return exe if exe.exists() else None


def peer_version(venv: Path) -> str:
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('scim2-server'))"],
        capture_output=True, text=True,
    )
    return r.stdout.strip() or "?"


# targets -----------------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    server: Server
    base: str  # URL up to the resource endpoints, e.g. http://127.0.0.1:P/scim/v2/<tenant>
    token: str
    users: int
    members: int
    ids: list[str]
    names: list[str]
    non_members: list[str]
    group_id: str | None

    @property
    def base_path(self) -> str:
        return urllib.parse.urlsplit(self.base).path

    @property
    def origin(self) -> str:
        u = urllib.parse.urlsplit(self.base)
        return f"{u.scheme}://{u.netloc}"


def mixed_case(s: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in s)


def request_lines(t: Target, scenario: str, thread: int, threads: int) -> list[str]:
    rng = random.Random(1000 + thread)
    p = t.base_path
    if scenario == "get_by_id":
        ids = t.ids[thread::threads] or t.ids
        return [f"GET\t{p}/Users/{i}" for i in ids]
    if scenario == "username_eq":
        names = t.names[thread::threads] or t.names
        return [f"GET\t{p}/Users?filter=" + urllib.parse.quote(f'userName eq "{mixed_case(n, rng)}"') for n in names]
    if scenario == "title_co":
        needles = TITLE_NEEDLES[thread:] + TITLE_NEEDLES[:thread]
        return [f"GET\t{p}/Users?count=10&filter=" + urllib.parse.quote(f'title co "{n}"') for n in needles]
    if scenario == "group_patch":
        assert t.group_id
        pool = t.non_members[thread::threads][:500]
        if not pool:
            raise RuntimeError(f"{t.name}: no users outside the group for the PATCH scenario")
        add = [
            json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "add", "path": "members", "value": [{"value": i}]}]})
            for i in pool
        ]
        remove = [
            json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "remove", "path": f'members[value eq "{i}"]'}]})
            for i in pool
        ]
        # every id is added, and removed len(pool) requests later: the group size stays within +len(pool)
        return [f"PATCH\t{p}/Groups/{t.group_id}\t{b}" for b in add + remove]
    raise ValueError(scenario)


def write_request_files(t: Target, scenario: str, threads: int, workdir: Path) -> str:
    prefix = workdir / f"req-{t.name}-{scenario}"
    for th in range(threads):
        Path(f"{prefix}.{th}").write_text("\n".join(request_lines(t, scenario, th, threads)) + "\n")
    return str(prefix)


def run_wrk(
    wrk: str, t: Target, scenario: str, workdir: Path, *, duration: float, connections: int, threads: int
) -> dict[str, Any]:
    threads = max(1, min(threads, connections))
    prefix = write_request_files(t, scenario, threads, workdir)
    cmd = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "120s",
        "-s", str(HERE / "lua" / "rotate.lua"), t.origin + "/", "--", prefix, t.token,
    ]
    cpu0 = t.server.cpu_seconds()
    r = subprocess.run(cmd, capture_output=True, text=True)
    cpu1 = t.server.cpu_seconds()
    line = next((x for x in r.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if r.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed for {t.name}/{scenario}: rc={r.returncode}\n{r.stdout}\n{r.stderr}")
    d = json.loads(line.removeprefix("WRK_JSON "))
    secs = d["duration_us"] / 1e6
    done = d["requests"] > 0
    errors = d["errors_connect"] + d["errors_read"] + d["errors_write"] + d["errors_timeout"]
    return {
        "requests": d["requests"],
        "rps": d["requests"] / secs if secs else 0.0,
        "p50_ms": d["p50_us"] / 1000 if done else None,
        "p90_ms": d["p90_us"] / 1000 if done else None,
        "p99_ms": d["p99_us"] / 1000 if done else None,
        "mean_ms": d["mean_us"] / 1000 if done else None,
        "max_ms": d["max_us"] / 1000 if done else None,
        "non_2xx_3xx": d["errors_status"],
        "socket_errors": errors,
        "server_cpu_s": cpu1 - cpu0,
        "cpu_ms_per_req": (cpu1 - cpu0) * 1000 / d["requests"] if d["requests"] else None,
        "connections": connections,
        "threads": threads,
        "duration_s": secs,
        "method": "wrk",
    }


def wait_idle(t: Target, *, quiet: float = 0.02, timeout: float = 120.0) -> None:
    """Wait until the server stops burning CPU (requests a load run left in flight have finished)."""
    deadline = time.monotonic() + timeout
    last = t.server.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now_ = t.server.cpu_seconds()
        if now_ - last < quiet:
            return
        last = now_


def timed_get(t: Target, path: str) -> float:
    import urllib.request

    req = urllib.request.Request(t.origin + path, headers={"Authorization": f"Bearer {t.token}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{t.name}: {path} -> {r.status}")
    return time.perf_counter() - t0


def run_sequential(t: Target, scenario: str, *, requests: int) -> dict[str, Any]:
    """For requests too slow for wrk's fixed window: ``requests`` GETs one after another, each timed."""
    paths = [line.split("\t")[1] for line in request_lines(t, scenario, 0, 1)]
    cpu0 = t.server.cpu_seconds()
    t0 = time.perf_counter()
    lat = [timed_get(t, paths[i % len(paths)]) for i in range(requests)]
    wall = time.perf_counter() - t0
    cpu = t.server.cpu_seconds() - cpu0
    lat_ms = sorted(x * 1000 for x in lat)
    return {
        "method": "sequential", "requests": requests, "rps": requests / wall, "p50_ms": statistics.median(lat_ms),
        "p90_ms": lat_ms[-1], "p99_ms": lat_ms[-1], "mean_ms": sum(lat_ms) / len(lat_ms), "max_ms": lat_ms[-1],
        "non_2xx_3xx": 0, "socket_errors": 0, "server_cpu_s": cpu, "cpu_ms_per_req": cpu * 1000 / requests,
        "connections": 1, "threads": 1, "duration_s": wall,
    }


# paging ------------------------------------------------------------------------------------------
async def walk_pages(t: Target, mode: str, *, count: int, budget: float) -> dict[str, Any]:
    """Read every user, ``count`` per page, by startIndex (mode "offset") or by cursor (RFC 9865).

    Stops after ``budget`` seconds; an unfinished walk is extrapolated from a least-squares fit of
    page time against page number (constant cost per page for a cursor, growing with the offset
    for startIndex), and reported as an estimate.
    """
    headers = {"Authorization": f"Bearer {t.token}", "Accept": "application/scim+json"}
    seen: set[str] = set()
    page_times: list[float] = []
    complete = False
    cpu0 = t.server.cpu_seconds()
    start = time.perf_counter()
    conn = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as s:
        start_index, cursor = 1, ""
        while time.perf_counter() - start <= budget:
            params = {"count": str(count)}
            if mode == "offset":
                params["startIndex"] = str(start_index)
            else:
                params["cursor"] = cursor
            t0 = time.perf_counter()
            async with s.get(f"{t.base}/Users", params=params) as r:
                if r.status != 200:
                    raise RuntimeError(f"{t.name} paging ({mode}) got {r.status}: {(await r.text())[:300]}")
                body = await r.json(content_type=None)
            page_times.append(time.perf_counter() - t0)
            resources = body.get("Resources") or []
            seen.update(x["id"] for x in resources)
            if mode == "offset":
                start_index += len(resources)
                if not resources or start_index > body.get("totalResults", 0):
                    complete = True
                    break
            else:
                cursor = body.get("nextCursor") or ""
                if not cursor or not resources:
                    complete = True
                    break
    wall = time.perf_counter() - start
    cpu = t.server.cpu_seconds() - cpu0
    pages = len(page_times)
    out: dict[str, Any] = {
        "mode": mode, "pages": pages, "users_read": len(seen), "complete": complete,
        "wall_s": wall, "server_cpu_s": cpu,
        "first_page_ms": page_times[0] * 1000 if page_times else None,
        "last_page_ms": page_times[-1] * 1000 if page_times else None,
    }
    if not complete and pages >= 2:
        total_pages = -(-t.users // count)
        n = pages
        mx = (n - 1) / 2
        my = sum(page_times) / n
        sxx = sum((i - mx) ** 2 for i in range(n))
        slope = max(0.0, sum((i - mx) * (y - my) for i, y in enumerate(page_times)) / sxx) if sxx else 0.0
        icpt = my - slope * mx
        est_rest = sum(icpt + slope * i for i in range(n, total_pages))
        est_wall = wall + max(0.0, est_rest)
        out.update({
            "budget_s": budget,
            "extrapolated_wall_s": est_wall,
            "extrapolated_server_cpu_s": cpu * est_wall / wall if wall else None,
            "fit_ms_per_page": [icpt * 1000, slope * 1000],
        })
    elif complete and len(seen) != t.users:
        out["warning"] = f"read {len(seen)} distinct users, expected {t.users}"
    return out


# peer --------------------------------------------------------------------------------------------
async def seed_peer(base: str, token: str, small: Seeded, members: int) -> tuple[list[str], list[str], str]:
    """POST the small dataset's user documents and a group to scim2-server through its own API."""
    import sqlite3

    conn = sqlite3.connect(f"file:{small.path}?mode=ro", uri=True)
    docs = [json.loads(r[0]) for r in conn.execute("SELECT data FROM users WHERE tenant_id = ? ORDER BY seq", (small.tenant_id,))]
    conn.close()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    ids: list[str | None] = [None] * len(docs)
    sem = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(headers=headers) as s:

        async def post(i: int, doc: dict[str, Any]) -> None:
            async with sem, s.post(f"{base}/Users", data=json.dumps(doc)) as r:
                body = await r.json(content_type=None)
                if r.status != 201:
                    raise RuntimeError(f"scim2-server refused user {doc['userName']}: {r.status} {body}")
                ids[i] = body["id"]

        await asyncio.gather(*(post(i, d) for i, d in enumerate(docs)))
        group = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": f"Bench group {members}",
            "members": [{"value": i} for i in ids[:members]],
        }
        async with s.post(f"{base}/Groups", data=json.dumps(group)) as r:
            body = await r.json(content_type=None)
            if r.status != 201:
                raise RuntimeError(f"scim2-server refused the group: {r.status} {body}")
            gid = body["id"]
    return [i for i in ids if i], [d["userName"] for d in docs], gid


# report ------------------------------------------------------------------------------------------
def med(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if 0 < abs(x) < 10 and digits == 0:
        return f"{x:.2f}"
    return f"{x:.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


def build_table(res: dict[str, Any], large_n: int, large_m: int) -> str:
    cols = ["small", "large", "large cost ×", "bare", "ours/bare", "peer", "ours/peer"]
    rows: list[list[str]] = []
    sm = res["summary"]
    for sc in [x for x in SCENARIOS if x in sm]:
        s = sm.get(sc, {})
        g = lambda tgt, k: (s.get(tgt) or {}).get(k)  # noqa: E731
        rows.append([SCENARIO_LABELS[sc]] + [""] * len(cols))
        rps = ["  req/s", fmt(g("small", "rps"), 0), fmt(g("large", "rps"), 0),
               fmt(ratio(g("small", "rps"), g("large", "rps")), 2), fmt(g("bare", "rps"), 0),
               fmt(ratio(g("small", "rps"), g("bare", "rps")), 2), fmt(g("peer", "rps"), 0),
               fmt(ratio(g("small", "rps"), g("peer", "rps")), 1)]
        rows.append(rps)
        for k, label in (("p50_ms", "  p50 ms"), ("p99_ms", "  p99 ms"), ("cpu_ms_per_req", "  server CPU ms/req")):
            rows.append([label, fmt(g("small", k), 2), fmt(g("large", k), 2), fmt(ratio(g("large", k), g("small", k)), 2),
                         fmt(g("bare", k), 2), "", fmt(g("peer", k), 2),
                         fmt(ratio(g("peer", k), g("small", k)), 1)])
    pg = res.get("paging", {})
    for mode in ("offset", "cursor") if pg else ():
        rows.append([f"full paging, count=100, {'startIndex' if mode == 'offset' else 'cursor (RFC 9865)'}"] + [""] * len(cols))
        for k, label in (("wall_s", "  wall s"), ("server_cpu_s", "  server CPU s")):
            def val(tgt: str) -> tuple[float | None, str]:
                p = (pg.get(tgt) or {}).get(mode)
                if not p:
                    return None, "—"
                if p.get("complete"):
                    return p[k], fmt(p[k], 2)
                ext = p.get("extrapolated_" + k)
                return ext, f"~{fmt(ext, 0)} (est.)"
            sv, ss = val("small")
            lv, ls = val("large")
            pv, ps = val("peer")
            per_user = ratio(ratio(lv, res["config"]["large_users"]), ratio(sv, res["config"]["small_users"]))
            rows.append([label, ss, ls, fmt(per_user, 1), "", "", ps, fmt(ratio(pv, sv), 1)])
    head = ["scenario (medians of rounds)"] + cols
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))  # noqa: E731
    out = [line(head), "-" * (sum(widths) + 2 * (len(widths) - 1))] + [line(r) for r in rows]
    out.append("")
    out.append(f"small = {res['config']['small_users']:,} users / {res['config']['small_members']} members; "
               f"large = {large_n:,} users / {large_m:,} members; bare = bare aiohttp handler (canned JSON); "
               "peer = scim2-server with the small dataset.")
    out.append("large cost × = small req/s ÷ large req/s on the req/s row, large ÷ small on the other rows (≤ 2 is the target). "
               "ours/bare and ours/peer compare small req/s; on latency/CPU rows ours/peer = peer ÷ ours (how many times cheaper). "
               "Paging rows: large cost × is per user read (large time/user ÷ small time/user).")
    return "\n".join(out)


def targets_report(res: dict[str, Any]) -> list[str]:
    sm, pg = res["summary"], res.get("paging", {})
    out = ["Targets (DESIGN §9):"]

    def g(sc: str, tgt: str, k: str) -> float | None:
        return (sm.get(sc, {}).get(tgt) or {}).get(k)

    for sc in [x for x in ("get_by_id", "username_eq", "group_patch") if x in sm]:
        c = ratio(g(sc, "small", "rps"), g(sc, "large", "rps"))
        l50 = ratio(g(sc, "large", "p50_ms"), g(sc, "small", "p50_ms"))
        cpu = ratio(g(sc, "large", "cpu_ms_per_req"), g(sc, "small", "cpu_ms_per_req"))
        ok = c is not None and c <= 2
        out.append(f"  flat cost {sc:12s}: large/small = {fmt(c, 2)}× by throughput, {fmt(l50, 2)}× p50, "
                   f"{fmt(cpu, 2)}× CPU/req (target ≤ 2×) {'OK' if ok else 'MISSED'}")
    for sc in [x for x in ("get_by_id", "username_eq") if x in sm and "bare" in sm[x]]:
        f_ = ratio(g(sc, "small", "rps"), g(sc, "bare", "rps"))
        out.append(f"  ceiling {sc:12s}: ours = {fmt(f_, 2)} of bare aiohttp (target ≥ 0.50) "
                   f"{'OK' if f_ is not None and f_ >= 0.5 else 'MISSED'}")
    for sc in [x for x in SCENARIOS if x in sm]:
        m = ratio(g(sc, "small", "rps"), g(sc, "peer", "rps"))
        out.append(f"  peer {sc:12s}: ours = {fmt(m, 1)}× scim2-server (target ≥ 5×) "
                   f"{'OK' if m is not None and m >= 5 else ('MISSED' if m is not None else 'not measured')}")
    for mode in ("offset", "cursor"):
        p = (pg.get("large") or {}).get(mode)
        if p:
            done = bool(p.get("complete"))
            cpu = p["server_cpu_s"] if done else p.get("extrapolated_server_cpu_s")
            n = res["config"]["large_users"]
            verdict = ("OK" if cpu is not None and cpu < 60 else "MISSED") if n >= 1_000_000 else "(n/a below 1,000,000)"
            how = "" if done else f" (extrapolated from {p['pages']:,} pages)"
            out.append(f"  paging {mode:6s} through {n:,} users: server CPU {'' if done else '~'}{fmt(cpu, 1)} s{how}"
                       f" (target < 60 s at 1,000,000 users) {verdict}")
    return out


# main --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--large", type=int, default=1_000_000, help="users in the large tenant (default 1,000,000)")
    p.add_argument("--large-members", type=int, help="members of the large group (default min(100,000, large/2))")
    p.add_argument("--quick", action="store_true", help="large = 100,000 users (50,000-member group)")
    p.add_argument("--small", type=int, default=1000, help="users in the small tenant (default 1,000)")
    p.add_argument("--small-members", type=int, default=10)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk measurement (default 5)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--scan-connections", type=int, default=2,
                   help="connections for the title co scan scenario (default 2: a scan is slow, keep queueing out of its latency)")
    p.add_argument("--scan-duration", type=float, default=10.0,
                   help="seconds per wrk measurement of the title co scan (default 10; at least --duration)")
    p.add_argument("--paging-budget", type=float, default=300.0,
                   help="seconds after which a paging walk stops and the rest is extrapolated (default 300)")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "scim-gateway-bench",
                   help="where seeded databases and the peer venv are cached")
    p.add_argument("--peer-venv", type=Path, help="venv with scim2-server (default <cache>/peer-venv, created on demand)")
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--no-bare", action="store_true")
    p.add_argument("--no-paging", action="store_true")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of " + ",".join(SCENARIOS))
    p.add_argument("--results", type=Path, default=HERE / "results")
    a = p.parse_args(argv)
    if a.quick:
        a.large = 100_000
    if a.large_members is None:
        a.large_members = min(100_000, a.large // 2)
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    scenarios = [s for s in args.scenarios.split(",") if s]
    wrk = ensure_wrk()
    started = datetime.now(timezone.utc)
    workdir = Path(tempfile.mkdtemp(prefix="scim-bench-run-"))
    res: dict[str, Any] = {
        "started": started.isoformat(),
        "config": {
            "small_users": args.small, "small_members": args.small_members, "large_users": args.large,
            "large_members": args.large_members, "duration_s": args.duration, "rounds": args.rounds,
            "connections": args.connections, "threads": args.threads, "scan_connections": args.scan_connections,
            "scan_duration_s": max(args.duration, args.scan_duration), "paging_budget_s": args.paging_budget,
            "scenarios": scenarios,
        },
        "environment": {
            "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(), "python": platform.python_version(),
            "platform": platform.platform(),
            "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
            "git_dirty": bool(subprocess.run(["git", "status", "--porcelain", "--", "gateway"], cwd=ROOT, capture_output=True, text=True).stdout.strip()),
            "wrk": subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.splitlines()[0:1],
        },
        "rounds": [],
    }
    log(f"workdir {workdir}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
        "(other processes on this machine compete for the same cores: compare within this run only)")
    try:
        small, reused_s = seeded(args.cache, args.small, args.small_members, log=log)
        large, reused_l = seeded(args.cache, args.large, args.large_members, log=log)
        res["seed"] = {
            "small": {"seconds": small.seed_seconds, "reused": reused_s},
            "large": {"seconds": large.seed_seconds, "reused": reused_l},
        }
        log(f"seeded databases: small {'reused' if reused_s else 'built'} ({small.seed_seconds:.1f} s), "
            f"large {'reused' if reused_l else 'built'} ({large.seed_seconds:.1f} s)")

        targets: dict[str, Target] = {}
        gw_env = {"SCIM_GATEWAY_LOG_LEVEL": "WARNING", "SCIM_GATEWAY_DATABASE": ""}
        for label, s in (("small", small), ("large", large)):
            port = free_port()
            srv = Server(f"ours-{label}", [sys.executable, "-m", "gateway.cli", "--database", s.path, "serve",
                                           "--host", "127.0.0.1", "--port", str(port)], port, workdir, gw_env)
            srv.start()
            base = f"http://127.0.0.1:{port}/scim/v2/{s.tenant_id}"
            smp = sample(s.path, s.tenant_id, s.users, s.members, 10_000)
            targets[label] = Target(label, srv, base, s.api_key, s.users, s.members, smp["ids"], smp["names"],
                                    smp["non_members"], s.group_id)
        for t in targets.values():
            t.server.wait_ready(f"{t.base}/ServiceProviderConfig", {"Authorization": f"Bearer {t.token}"})
        log("gateway servers up: " + ", ".join(f"{t.name} {t.origin}" for t in targets.values()))

        if not args.no_bare:
            import urllib.request

            t = targets["small"]
            req = urllib.request.Request(f"{t.base}/Users/{t.ids[0]}", headers={"Authorization": f"Bearer {t.token}"})
            with urllib.request.urlopen(req) as r:
                doc = json.load(r)
            (workdir / "user.json").write_text(json.dumps(doc))
            port = free_port()
            srv = Server("bare", [sys.executable, str(HERE / "bare_server.py"), "--port", str(port),
                                  "--doc", str(workdir / "user.json")], port, workdir)
            srv.start()
            bt = Target("bare", srv, f"http://127.0.0.1:{port}/scim/v2/bench", t.token, t.users, 0, t.ids, t.names, [], None)
            srv.wait_ready(f"{bt.base}/Users/{t.ids[0]}", {})
            targets["bare"] = bt
            log(f"bare aiohttp server up: {bt.origin}")

        if not args.no_peer:
            venv = args.peer_venv or (args.cache / "peer-venv")
            exe = ensure_peer_venv(venv)
            if exe is None:
                res["peer_error"] = "scim2-server could not be installed"
            else:
                port = free_port()
                token = "bench-peer-token"
                # The scim2-server command serves its WSGI app with wsgiref's threading server
                # (ThreadingMixIn + WSGIServer): the documented way to run it stand-alone.
                srv = Server("peer", [str(exe), "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", token],
                             port, workdir)
                srv.start()
                base = f"http://127.0.0.1:{port}/v2"
                try:
                    srv.wait_ready(f"{base}/ServiceProviderConfig", {"Authorization": f"Bearer {token}"})
                    log(f"scim2-server {peer_version(venv)} up at {base}; seeding {small.users:,} users through its API")
                    t0 = time.perf_counter()
                    ids, names, gid = asyncio.run(seed_peer(base, token, small, small.members))
                    log(f"  peer seeded in {time.perf_counter() - t0:.1f} s")
                    rng = random.Random(5)
                    rng.shuffle(ids)
                    targets["peer"] = Target("peer", srv, base, token, len(ids), small.members, ids,
                                             rng.sample(names, len(names)), ids_outside(ids, gid, base, token), gid)
                    res["peer"] = {"version": peer_version(venv), "server": "scim2-server CLI (wsgiref ThreadingWSGIServer)"}
                except Exception as exc:  # noqa: BLE001 - report precisely, measure the rest
                    res["peer_error"] = f"{type(exc).__name__}: {exc}"
                    log(f"scim2-server could not be used: {res['peer_error']}")
                    srv.stop()

        order = [n for n in ("small", "large", "bare", "peer") if n in targets]
        applicable = {sc: [n for n in order if n != "bare" or sc in ("get_by_id", "username_eq")] for sc in scenarios}

        scan_probe: dict[str, float] = {}

        def measure(t: Target, sc: str, duration: float) -> dict[str, Any]:
            if sc != "title_co":
                return run_wrk(wrk, t, sc, workdir, duration=duration, connections=args.connections, threads=args.threads)
            # A scan: probe one request first. When a request takes more than a quarter of the
            # window, wrk (which counts only completed requests) cannot measure it: time a few
            # requests one after another instead. Either way, wait for the server to go idle after.
            if t.name not in scan_probe:
                scan_probe[t.name] = timed_get(t, request_lines(t, sc, 0, 1)[0].split("\t")[1])
                wait_idle(t)
            window = max(duration, args.scan_duration)
            if duration <= 1:  # warm-up
                return {}
            if scan_probe[t.name] * 4 > window:
                m = run_sequential(t, sc, requests=3)
            else:
                m = run_wrk(wrk, t, sc, workdir, duration=window, connections=args.scan_connections, threads=args.threads)
            wait_idle(t)
            return m

        log("warm-up (1 s per target and scenario)")
        for sc in scenarios:
            for n in applicable[sc]:
                measure(targets[n], sc, 1)
        for rnd in range(args.rounds):
            log(f"round {rnd + 1}/{args.rounds}: targets interleaved per scenario ({', '.join(order)})")
            rd: dict[str, Any] = {}
            for sc in scenarios:
                rd[sc] = {}
                for n in applicable[sc]:
                    m = measure(targets[n], sc, args.duration)
                    rd[sc][n] = m
                    bad = f", {m['non_2xx_3xx']} non-2xx, {m['socket_errors']} socket errors" if m["non_2xx_3xx"] or m["socket_errors"] else ""
                    log(f"  {sc:12s} {n:6s} {m['rps']:9.1f} req/s  p50 {fmt(m['p50_ms'], 2):>8s} ms  p99 {fmt(m['p99_ms'], 2):>8s} ms  "
                        f"cpu {fmt(m['cpu_ms_per_req'], 3)} ms/req  ({m['requests']} requests, {m['method']}){bad}")
            res["rounds"].append(rd)
        res["summary"] = {
            sc: {
                n: {k: med([r[sc][n][k] for r in res["rounds"]]) for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "cpu_ms_per_req")}
                | {"non_2xx_3xx": sum(r[sc][n]["non_2xx_3xx"] for r in res["rounds"])}
                for n in applicable[sc]
            }
            for sc in scenarios
        }

        if not args.no_paging:
            res["paging"] = {}
            for n in ("small", "peer", "large"):
                if n not in targets:
                    continue
                t = targets[n]
                res["paging"][n] = {}
                modes = ["offset"] if n == "peer" else ["offset", "cursor"]
                for mode in modes:
                    reps = args.rounds if t.users <= 10_000 else 1
                    budget = args.paging_budget
                    runs = [asyncio.run(walk_pages(t, mode, count=100, budget=budget)) for _ in range(reps)]
                    runs.sort(key=lambda x: x["wall_s"])
                    p = dict(runs[len(runs) // 2])
                    p["runs"] = len(runs)
                    res["paging"][n][mode] = p
                    est = "" if p["complete"] else f" (stopped after the budget; extrapolated ~{p['extrapolated_wall_s']:.0f} s wall)"
                    log(f"  paging {n:5s} {mode:6s}: {p['pages']:,} pages, {p['users_read']:,} users, "
                        f"{p['wall_s']:.2f} s wall, {p['server_cpu_s']:.2f} s server CPU{est}")
    except KeyboardInterrupt:
        log("interrupted: stopping servers")
        stop_all()
        return 130
    finally:
        stop_all()
        res["environment"]["loadavg_end"] = os.getloadavg()
        shutil.rmtree(workdir, ignore_errors=True)

    res["finished"] = datetime.now(timezone.utc).isoformat()
    table = build_table(res, args.large, args.large_members)
    print()
    print(table)
    print()
    for line in targets_report(res):
        print(line)
    if res.get("peer_error"):
        print(f"peer: {res['peer_error']}")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{started.strftime('%Y%m%dT%H%M%SZ')}{'-quick' if args.quick else ''}.json"
    res["table"] = table
    out.write_text(json.dumps(res, indent=2, default=str))
    print(f"\nresults written to {out}")
    return 0


def ids_outside(ids: list[str], gid: str, base: str, token: str) -> list[str]:
    """Peer users that are not members of its group (the group holds the first ids POSTed)."""
    import urllib.request

    req = urllib.request.Request(f"{base}/Groups/{gid}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        members = {m["value"] for m in json.load(r).get("members", [])}
    return [i for i in ids if i not in members]


if __name__ == "__main__":
    sys.exit(main())
