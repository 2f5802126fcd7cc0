"""CLI twins: `scim-gateway events` (paging, --follow) and `scim-gateway webhooks ...`, on a SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main


class Cli:
    def __init__(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *args: str, code: int = 0, lines: bool = False) -> Any:
        assert main(["--database", str(self.db), *args, "--json"]) == code
        captured = self.capsys.readouterr()
        self.err = captured.err
        if lines:
            return [json.loads(x) for x in captured.out.splitlines() if x.strip()]
        return json.loads(captured.out)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "cli.db", capsys)


def test_cli_events_pages_with_cursor(cli: Cli) -> None:
    t = cli("tenants", "create", "Acme", "--role-mapping", json.dumps({"source": "idp_groups", "group_roles": {"Ops": ["op"]}}))
    for name in ("a", "b", "c"):
        cli("sso", "sign-in", t["id"], "--user-name", name, "--group", "Ops")
    first = cli("events", t["id"], "--limit", "2", lines=True)
    assert [(e["type"], e["source"], e["data"]["userName"]) for e in first] == [
        ("user.created", "sso", "a"), ("user.created", "sso", "b")]
    cursor = cli.err.strip().split()[-1]
    rest = cli("events", t["id"], "--after", cursor, lines=True)
    assert [e["data"]["userName"] for e in rest] == ["c"]
    assert cli("events", t["id"], "--type", "user.deleted", lines=True) == []
    assert cli("events", t["id"], "--type", "user.exploded", code=1)["error"] == "validation_error"
    assert cli("events", "no-such-tenant", code=1)["error"] == "not_found"
    assert cli("events", t["id"], "--after", "garbage", code=1)["error"] == "invalid_cursor"


def test_cli_webhooks_twins(cli: Cli) -> None:
    t = cli("tenants", "create", "Hooks")
    created = cli("webhooks", "create", t["id"], "--url", "https://app.example.com/h", "--event", "user.created",
                  "--description", "new users")
    assert created["secret"].startswith("whsec_") and created["events"] == ["user.created"]
    wid = created["id"]
    listed = cli("webhooks", "list", t["id"])
    assert [w["id"] for w in listed] == [wid] and "secret" not in listed[0]
    assert cli("webhooks", "show", t["id"], wid)["description"] == "new users"
    updated = cli("webhooks", "update", t["id"], wid, "--all-events", "--enabled", "off")
    assert updated["all_events"] and updated["enabled"] is False
    assert cli("webhooks", "update", t["id"], wid, "--url", "ftp://nope", code=1)["error"] == "validation_error"
    assert cli("webhooks", "update", t["id"], wid, code=1)["error"] == "validation_error"
    rotated = cli("webhooks", "rotate-secret", t["id"], wid)
    assert rotated["secret"] != created["secret"]
    assert cli("webhooks", "deliveries", t["id"], wid) == {"data": [], "next_cursor": None}
    assert cli("webhooks", "retry", t["id"], wid, "dlv_missing", code=1)["error"] == "not_found"
    assert cli("webhooks", "create", t["id"], "--url", "mailto:x@example.com", code=1)["error"] == "validation_error"
    assert cli("webhooks", "delete", t["id"], wid) == {"id": wid, "deleted": True}
    assert cli("webhooks", "show", t["id"], wid, code=1)["error"] == "not_found"


@pytest.mark.slow
def test_cli_events_follow_streams_new_events(tmp_path: Path) -> None:
    db = tmp_path / "follow.db"
    env = {**os.environ, "SCIM_GATEWAY_DATABASE": str(db)}
    run = [sys.executable, "-m", "gateway.cli"]
    tenant = json.loads(subprocess.run([*run, "tenants", "create", "Follow", "--json"], env=env, check=True,
                                       capture_output=True, text=True).stdout)
    proc = subprocess.Popen([*run, "events", tenant["id"], "--follow", "--json", "--interval", "0.1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)
        for name in ("x", "y"):
            subprocess.run([*run, "sso", "sign-in", tenant["id"], "--user-name", name], env=env, check=True,
                           capture_output=True)
        assert proc.stdout is not None
        got = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert [(e["type"], e["data"]["userName"], e["sequence"]) for e in got] == [
            ("user.created", "x", 1), ("user.created", "y", 2)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
