"""The ``schemas`` commands: the admin API's custom schema extension actions, same validation, same answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"


def run(db: Path, capsys: pytest.CaptureFixture[str], *args: str, code: int = 0, as_json: bool = True) -> str:
    assert main(["--database", str(db), *args, *(["--json"] if as_json else [])]) == code
    return capsys.readouterr().out


def test_cli_schemas_put_list_show_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    tenant = json.loads(run(db, capsys, "tenants", "create", "Acme", "--scim", "on"))["id"]
    schema_file = tmp_path / "acme.json"
    schema_file.write_text(json.dumps({"attributes": [{"name": "accessLevel", "canonicalValues": ["gold"]},
                                                      {"name": "badgeNumber", "type": "integer"}]}))
    view = json.loads(run(db, capsys, "schemas", "put", tenant, ACME, f"@{schema_file}"))
    assert view["id"] == ACME and view["resourceType"] == "User" and view["attributes"][1]["type"] == "integer"
    assert run(db, capsys, "schemas", "list", tenant, as_json=False).strip() == f"{ACME} extends User: accessLevel, badgeNumber"
    assert json.loads(run(db, capsys, "schemas", "show", tenant, ACME))["attributes"] == view["attributes"]
    replaced = run(db, capsys, "schemas", "put", tenant, ACME, '{"attributes": [{"name": "accessLevel"}]}', as_json=False)
    assert replaced.startswith(f"replaced {ACME} extends User: accessLevel")
    assert json.loads(run(db, capsys, "schemas", "delete", tenant, ACME)) == {"deleted": ACME}
    assert json.loads(run(db, capsys, "schemas", "list", tenant)) == {"schemas": []}


def test_cli_schemas_errors_match_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    tenant = json.loads(run(db, capsys, "tenants", "create", "Acme"))["id"]
    err = json.loads(run(db, capsys, "schemas", "put", tenant, ACME, '{"attributes": [{"name": "c", "type": "complex"}]}', code=1))
    assert err["error"] == "invalid_schema" and "attributes[0].subAttributes" in err["detail"]
    err = json.loads(run(db, capsys, "schemas", "put", tenant, ACME, "{nope", code=1))
    assert err["error"] == "validation_error" and "Invalid JSON" in err["detail"]
    err = json.loads(run(db, capsys, "schemas", "put", tenant, ACME, f"@{tmp_path / 'missing.json'}", code=1))
    assert err["error"] == "invalid_json"
    err = json.loads(run(db, capsys, "schemas", "show", tenant, ACME, code=1))
    assert err["error"] == "not_found"
    err = json.loads(run(db, capsys, "schemas", "delete", "no-tenant", ACME, code=1))
    assert err == {"error": "not_found", "detail": "no tenant 'no-tenant'"}
