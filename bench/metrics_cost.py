"""The cost of metrics on a GET by id: the same build with SCIM_GATEWAY_METRICS_ENABLED on and off.

    python bench/metrics_cost.py [--users 1000] [--rounds 5] [--duration 5] [--page results/metrics_page.txt]

Seeds one SQLite tenant (bench/seed.py), starts `scim-gateway serve` twice on copies of it (metrics on,
metrics off), and measures GET /Users/{id} with wrk (bench/lua/rotate.lua) in interleaved rounds so
both see the same machine load. Prints, per round and as medians, requests per second and server CPU
per request (the steadier figure on a shared machine), and the ratio on/off (target < 1.05x for CPU
per request). Then it runs a short mixed load (creates, reads, filters, PATCHes, errors, auth
failures) against the metrics-on server and saves its /metrics page. A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from seed import sample, seeded  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: Path, metrics: bool, log: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "SCIM_GATEWAY_LOG_LEVEL": "WARNING", "SCIM_GATEWAY_METRICS_ENABLED": str(metrics).lower(),
               "SCIM_GATEWAY_RATE_LIMIT_PER_SECOND": "0",  # measure the request path, not the limiter's 429s
               "SCIM_GATEWAY_ADMIN_TOKEN": "adm_bench_" + "x" * 30}
        self.log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--database", str(db), "serve",
                                      "--port", str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=self.log,
                                     start_new_session=True)
        self.origin = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(self.origin + "/healthz", timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        with_suppress(lambda: os.killpg(self.proc.pid, signal.SIGTERM))
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with_suppress(lambda: os.killpg(self.proc.pid, signal.SIGKILL))
            self.proc.wait()
        self.log.close()


def with_suppress(fn: Any) -> None:
    try:
        fn()
    except (ProcessLookupError, PermissionError):
        pass


def wrk_get_by_id(server: Server, tenant: str, token: str, ids: list[str], workdir: Path, duration: float) -> dict[str, float]:
    prefix = workdir / "get_by_id"
    for thread in range(2):
        (workdir / f"get_by_id.{thread}").write_text(
            "".join(f"GET\t/scim/v2/{tenant}/Users/{i}\n" for i in ids[thread::2]))
    cmd = ["wrk", "-t2", "-c16", f"-d{duration:g}s", "--timeout", "30s", "-s", str(HERE / "lua" / "rotate.lua"),
           server.origin + "/", "--", str(prefix), token]
    subprocess.run(cmd[:4] + ["-d1s"] + cmd[5:], capture_output=True)  # warm-up
    cpu0 = server.cpu_seconds()
    r = subprocess.run(cmd, capture_output=True, text=True)
    cpu1 = server.cpu_seconds()
    line = next(x for x in r.stdout.splitlines() if x.startswith("WRK_JSON "))
    d = json.loads(line.removeprefix("WRK_JSON "))
    if d["errors_status"]:
        raise RuntimeError(f"non-2xx answers: {d}")
    secs = d["duration_us"] / 1e6
    return {"rps": d["requests"] / secs, "cpu_us_per_req": (cpu1 - cpu0) * 1e6 / d["requests"]}


def call(method: str, url: str, token: str, body: Any = None) -> int:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)


def mixed_run(server: Server, tenant: str, token: str, ids: list[str]) -> dict[str, int]:
    base = f"{server.origin}/scim/v2/{tenant}"
    statuses: dict[str, int] = {}
    user = "urn:ietf:params:scim:schemas:core:2.0:User"
    patch = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    for i in range(40):
        for method, path, body, key in (
            ("POST", "/Users", {"schemas": [user], "userName": f"mixed{i}@example.com"}, token),
            ("GET", f"/Users/{ids[i % len(ids)]}", None, token),
            ("GET", '/Users?filter=userName%20eq%20%22mixed1%40example.com%22', None, token),
            ("PATCH", f"/Users/{ids[i % len(ids)]}", {"schemas": [patch], "Operations": [
                {"op": "replace", "path": "title", "value": f"t{i}"}]}, token),
            ("POST", "/Users", {"schemas": [user], "userName": "mixed1@example.com"}, token),  # 409 uniqueness
            ("GET", '/Users?filter=bogus%20zz', None, token),  # 400 invalidFilter
            ("GET", "/Users/no-such-id", None, token),  # 404
        ):
            s = call(method, base + path, key, body)
            statuses[str(s)] = statuses.get(str(s), 0) + 1
    for _ in range(12):  # last: repeated failed authentication gets this address throttled (429)
        s = call("GET", base + "/Users", "scimgw_wrong")
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    call("GET", server.origin + "/api/v1/tenants", "adm_bench_" + "x" * 30)
    return statuses


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--page", type=Path, default=HERE / "results" / "metrics_page.txt")
    args = p.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (Debian package 'wrk')")
    cache = Path(tempfile.gettempdir()) / "scim-gateway-bench"
    cache.mkdir(exist_ok=True)
    s, _ = seeded(cache, args.users, min(10, args.users // 2), log=lambda *a: None)
    ids = sample(s.path, s.tenant_id, s.users, s.members, 200)["ids"]
    work = Path(tempfile.mkdtemp(prefix="metrics-cost-"))
    servers: dict[bool, Server] = {}
    try:
        for on in (True, False):
            db = work / f"metrics-{'on' if on else 'off'}.db"
            shutil.copy(s.path, db)
            servers[on] = Server(db, on, work / f"server-{on}.log")
        rounds: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for r in range(args.rounds):
            for on in ((True, False) if r % 2 == 0 else (False, True)):  # alternate who goes first
                m = wrk_get_by_id(servers[on], s.tenant_id, s.api_key, ids, work, args.duration)
                rounds[on].append(m)
                print(f"round {r + 1} metrics {'on ' if on else 'off'}: {m['rps']:8.0f} req/s  "
                      f"{m['cpu_us_per_req']:6.1f} µs CPU/req", flush=True)
        med = {on: {k: statistics.median(x[k] for x in rounds[on]) for k in ("rps", "cpu_us_per_req")} for on in rounds}
        print(f"\nmedian, metrics on : {med[True]['rps']:.0f} req/s, {med[True]['cpu_us_per_req']:.1f} µs CPU/req")
        print(f"median, metrics off: {med[False]['rps']:.0f} req/s, {med[False]['cpu_us_per_req']:.1f} µs CPU/req")
        print(f"cost of metrics (on/off): CPU per request {med[True]['cpu_us_per_req'] / med[False]['cpu_us_per_req']:.3f}x, "
              f"throughput {med[False]['rps'] / med[True]['rps']:.3f}x (target < 1.05x)")
        statuses = mixed_run(servers[True], s.tenant_id, s.api_key, ids)
        page = urllib.request.urlopen(servers[True].origin + "/metrics", timeout=10).read().decode()
        args.page.parent.mkdir(parents=True, exist_ok=True)
        args.page.write_text(page)
        print(f"\nmixed run statuses: {json.dumps(statuses, sort_keys=True)}; /metrics page saved to {args.page}")
    finally:
        for srv in servers.values():
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
