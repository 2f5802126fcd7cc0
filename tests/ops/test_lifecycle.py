"""Process lifecycle under `serve --workers N`: SIGTERM/SIGINT stop every worker (no orphans), a dead worker
is restarted and logged, workers stop when the parent is killed, in-flight requests finish within the grace
period; metrics aggregate across workers (prometheus-client multiprocess mode)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from gateway.testing import free_port

TOKEN = "adm_lifecycle_" + "v" * 40


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}


def _wait(predicate: Any, timeout: float = 20.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def _events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


class Server:
    def __init__(self, tmp: Path, workers: int, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = tmp / "server.log"
        env = {**os.environ, "SCIM_GATEWAY_DATABASE": str(tmp / "gw.db"), "SCIM_GATEWAY_LOG_JSON": "true",
               "SCIM_GATEWAY_ADMIN_TOKEN": TOKEN, "SCIM_GATEWAY_SHUTDOWN_GRACE_SECONDS": "5", **(extra_env or {})}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self._log = self.log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port),
                                      "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=self._log,
                                     start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        expected = workers if workers > 1 else 0  # one worker: the process serves by itself
        assert _wait(lambda: len(self.workers()) == expected and self.ready() and self.serving() >= workers, 60), \
            self.log.read_text()

    def serving(self) -> int:
        return sum(1 for e in _events(self.log) if e["event"] == "worker_serving")

    def workers(self) -> set[int]:
        return _children(self.proc.pid)

    def ready(self) -> bool:
        try:
            urllib.request.urlopen(self.base + "/healthz", timeout=1).close()
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path, 2)
    yield s
    pids = s.workers()
    s.close()
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_workers_signal_stops_every_worker(two_workers: Server, signum: int) -> None:
    workers = two_workers.workers()
    assert len(workers) == 2
    two_workers.proc.send_signal(signum)
    assert two_workers.proc.wait(timeout=30) == 0
    assert _wait(lambda: not any(_alive(p) for p in workers), 10), "orphaned workers"
    events = [e["event"] for e in _events(two_workers.log)]
    assert "shutdown_started" in events and "shutdown_complete" in events
    assert events.count("worker_stopped") == 2 and events.count("background_tasks_stopped") == 2
    with pytest.raises(OSError):
        urllib.request.urlopen(two_workers.base + "/healthz", timeout=1)


def test_a_dead_worker_is_restarted_and_logged(two_workers: Server) -> None:
    before = two_workers.workers()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    def replaced() -> bool:
        now = two_workers.workers()  # one look: two would race the restart
        return len(now) == 2 and victim not in now

    assert _wait(replaced)
    assert _wait(lambda: any(e["event"] == "worker_restarted" for e in _events(two_workers.log)))
    events = _events(two_workers.log)
    died = [e for e in events if e["event"] == "worker_died"]
    assert died and died[0]["pid"] == victim and died[0]["exitcode"] == -signal.SIGKILL, two_workers.log.read_text()
    assert any(e["event"] == "worker_restarted" and e["replaced"] == victim for e in events)
    assert _wait(two_workers.ready)


def test_workers_stop_when_the_parent_is_killed(two_workers: Server) -> None:
    workers = two_workers.workers()
    two_workers.proc.kill()  # SIGKILL: the parent cannot forward anything
    two_workers.proc.wait(timeout=10)
    assert _wait(lambda: not any(_alive(p) for p in workers), 15), (
        "workers outlived their parent", subprocess.run(["ps", "-o", "pid,ppid,stat,cmd", "-p", ",".join(map(str, workers))],
                                                        capture_output=True, text=True).stdout, two_workers.log.read_text()[-1500:])
    assert any(e["event"] == "parent_gone" for e in _events(two_workers.log))


def test_in_flight_request_finishes_within_the_grace_period(tmp_path: Path) -> None:
    # A slow request: a large Bulk of creates, each operation its own transaction. SIGTERM is sent once the
    # server has committed the first operation (seen in its database), so the request is in flight by then.
    s = Server(tmp_path, 1)
    try:
        tenant = _post(s.base + "/api/v1/tenants", {"name": "Grace", "scim_enabled": True}, TOKEN)
        key = _post(s.base + f"/api/v1/tenants/{tenant['id']}/api-keys", {"name": "k"}, TOKEN)["key"]
        ops = [{"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"g{i}@example.com"}}
            for i in range(400)]
        result: dict[str, Any] = {}

        def send() -> None:
            result["status"], result["body"] = _post_status(
                f"{s.base}/scim/v2/{tenant['id']}/Bulk",
                {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}, key)

        t = threading.Thread(target=send)
        t.start()
        assert _wait(lambda: _users(tmp_path / "gw.db", tenant["id"]) > 0 or not t.is_alive(), 30, 0.005)
        assert t.is_alive(), ("the bulk finished before it was seen in flight", result)
        s.proc.send_signal(signal.SIGTERM)
        t.join(timeout=30)
        assert s.proc.wait(timeout=30) == 0
        assert result.get("status") == 200, result
        assert len(result["body"]["Operations"]) == 400
        assert all(op["status"] == "201" for op in result["body"]["Operations"])
        events = [e["event"] if e["event"] != "request" else (e["event"], e["path"]) for e in _events(s.log)]
        bulk = ("request", f"/scim/v2/{tenant['id']}/Bulk")
        # shutdown began while the bulk was being handled, and the bulk still completed before the worker stopped
        assert events.index("worker_shutting_down") < events.index(bulk) < events.index("worker_stopped"), events
    finally:
        s.close()


def _users(db: Path, tenant_id: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute("SELECT count(*) FROM users WHERE tenant_id = ?", (tenant_id,)).fetchone()[0])
    finally:
        con.close()


def test_metrics_aggregate_across_workers(two_workers: Server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(20):
        urllib.request.urlopen(two_workers.base + "/api/v1/openapi.json", timeout=5).close()
    page = urllib.request.urlopen(two_workers.base + "/metrics", timeout=5).read().decode()
    total = 0.0
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "scim_gateway_http_requests_total" and sample.labels.get("route") == "/api/v1/openapi.json":
                total += sample.value
    assert total == 20  # whichever worker served each request, the page counts all of them


def _post(url: str, body: Any, token: str) -> Any:
    status, doc = _post_status(url, body, token)
    assert status in (200, 201), (status, doc)
    return doc


def _post_status(url: str, body: Any, token: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(), headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
