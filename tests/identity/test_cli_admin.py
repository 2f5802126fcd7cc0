"""CLI parity with the admin API: every admin action as a command with --json, on a temp SQLite file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main


class Cli:
    def __init__(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *args: str, code: int = 0) -> Any:
        assert main(["--database", str(self.db), *args, "--json"]) == code
        out = self.capsys.readouterr().out
        return json.loads(out)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("SCIM_GATEWAY_PUBLIC_URL", "https://api.agilitycredit.net")
    return Cli(tmp_path / "cli.db", capsys)


def test_cli_tenant_show_update_and_role_mapping(cli: Cli) -> None:
    mapping = {"source": "idp_groups", "group_roles": {"Finance": ["accountant"]}, "default_roles": ["viewer"]}
    t = cli("tenants", "create", "Acme", "--role-mapping", json.dumps(mapping))
    assert t["scim_enabled"] is False and t["role_mapping"]["group_roles"] == {"Finance": ["accountant"]}
    assert cli("tenants", "show", t["id"]) == t
    u = cli("tenants", "update", t["id"], "--scim", "on", "--log-successful-events", "on", "--name", "Acme Inc",
            "--retention-max-events", "1000")
    assert (u["scim_enabled"], u["log_successful_events"], u["name"]) == (True, True, "Acme Inc")
    assert u["activity_retention"] == {"max_age_days": None, "max_events": 1000}
    assert u["scim_url"] == f"https://api.agilitycredit.net/scim/v2/{t['id']}"
    err = cli("tenants", "update", t["id"], "--role-mapping", '{"source": "nope"}', code=1)
    assert err["error"] == "validation_error" and "role_mapping" in err["detail"]
    err = cli("tenants", "show", "missing", code=1)
    assert err == {"error": "not_found", "detail": "no tenant 'missing'"}


def test_cli_sso_users_roles_and_activity(cli: Cli) -> None:
    t = cli("tenants", "create", "Beta")
    signed = cli("sso", "sign-in", t["id"], "--user-name", "Ann@Example.com", "--email", "ann@example.com",
                 "--given-name", "Ann", "--group", "Admins")
    assert signed["decision"] == "allow" and signed["jit_created"] is True and signed["user"]["provisioned_by"] == "jit"
    page = cli("users", "list", t["id"])
    assert [u["userName"] for u in page["users"]] == ["Ann@Example.com"] and page["next_cursor"] is None
    uid = page["users"][0]["id"]
    assert cli("roles", "set", t["id"], uid, "admin", "billing")["roles"] == ["admin", "billing"]
    assert cli("roles", "set", t["id"], uid)["roles"] == []
    cli("tenants", "update", t["id"], "--role-mapping", '{"source": "idp_attribute"}')
    err = cli("roles", "set", t["id"], uid, "admin", code=1)
    assert err["error"] == "roles_not_portal_managed"
    again = cli("sso", "sign-in", t["id"], "--user-name", "ann@example.com", "--attributes", '{"roles": ["Admin"]}')
    assert again["roles"] == ["Admin"] and again["roles_source"] == "role_mapping"
    cli("tenants", "update", t["id"], "--scim", "on")
    rejected = cli("sso", "sign-in", t["id"], "--user-name", "bob@example.com", code=5)
    assert rejected["reason"] == "scim_required_user_not_provisioned"
    assert cli("activity", t["id"]) == []  # JIT and admin actions are not SCIM events
    assert cli("activity", t["id"], "--type", "scim_error") == []


def test_cli_keys_json_matches_the_api(cli: Cli) -> None:
    t = cli("tenants", "create", "Gamma")
    k = cli("keys", "create", t["id"], "--name", "Entra")
    assert set(k) == {"id", "name", "key", "created"}
    listed = cli("keys", "list", t["id"])
    assert listed[0]["id"] == k["id"] and k["key"] not in json.dumps(listed)
    assert cli("keys", "revoke", t["id"], k["id"]) == {"id": k["id"], "revoked": True}
    assert cli("scim", "enable", t["id"]) == {"id": t["id"], "scim_enabled": True}
