"""``activity export``: live IdP traffic recorded by a debug-logging tenant, exported as sample files,
replayed by the test kit on a fresh tenant, passing; with and without pseudonymisation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from gateway.cli import main
from gateway.identity import management
from gateway.identity.export import Pseudonymiser
from gateway.testing import Replay, ScimClient

ROOT = Path(__file__).resolve().parent.parent
ENTRA = ROOT / "plugins" / "entra" / "tests"
OKTA = ROOT / "plugins" / "okta" / "tests"
ENTRA_UA = {"User-Agent": "Microsoft Azure AD SCIM provisioning"}


async def debug_tenant(scim: ScimClient, idp: str) -> ScimClient:
    client = await scim.other_tenant(f"{idp} debug", idp=idp)
    await management.update_tenant(scim.gateway.store, client.tenant.id, management.TenantUpdate(log_successful_events=True),
                                   scim.gateway.settings.scim_url)
    return client


async def export(scim: ScimClient, capsys: pytest.CaptureFixture[str], tenant_id: str, out: Path, *extra: str) -> dict[str, Any]:
    # main() runs its own event loop on the same database file: a thread, while this loop keeps serving
    code = await asyncio.to_thread(main, ["--database", scim.gateway.settings.database, "activity", "export", tenant_id,
                                          "--out", str(out), "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # the manifest is the command's one JSON line (the live server's own log lines may share stdout here)
    manifest: dict[str, Any] = json.loads([line for line in captured.out.splitlines() if line.startswith('{"format"')][-1])
    assert manifest == json.loads((out / "manifest.json").read_text())
    return manifest


async def test_export_round_trip_entra_traffic_replays_passing(
    scim: ScimClient, replay: Callable[..., Replay], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = await debug_tenant(scim, "entra")
    recorded = replay(ENTRA, ENTRA_UA, live)
    await recorded.run_all()
    manifest = await export(scim, capsys, live.tenant.id, tmp_path / "export")

    files = sorted((tmp_path / "export" / "samples").glob("*.json"))
    assert len(files) == len(recorded.names()) == manifest["source"]["events"] and not manifest["warnings"]
    assert manifest["source"]["tenant_id"] == live.tenant.id and manifest["source"]["idp"] == "entra"
    first = json.loads(files[0].read_text())
    assert first["request"]["method"] == "GET" and first["request"]["path"].startswith("/Users?filter=")
    assert first["request"]["headers"]["user-agent"] == ENTRA_UA["User-Agent"]
    # the gateway's ids became placeholders captured from the creating responses
    assert set(manifest["captures"]) >= {"user1_id", "group1_id"}
    assert all(live.tenant.id in json.loads(f.read_text())["source"] for f in files)  # where it came from
    assert not any(live.tenant.id in json.dumps([json.loads(f.read_text())[k] for k in ("request", "expected")]) for f in files)

    fresh = await scim.other_tenant("Entra replay", idp="entra")
    again = Replay(fresh, tmp_path / "export")
    assert again.names() == [f.stem for f in files]
    await again.run_all()  # every status and body part as recorded
    assert again.vars["user1_id"] != recorded.vars["user_id"]


async def test_export_pseudonymised_round_trip_keeps_correlations(
    scim: ScimClient, replay: Callable[..., Replay], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = await debug_tenant(scim, "okta")
    await replay(OKTA, None, live).run_all()
    out = tmp_path / "anon"
    manifest = await export(scim, capsys, live.tenant.id, out, "--pseudonymise", "--client", "okta")
    text = "".join(f.read_text() for f in (out / "samples").glob("*.json")) + (out / "manifest.json").read_text()
    for personal in ("test.user@okta.local", "TEST.USER@OKTA.LOCAL", "00ujl29u0le5T6Aj10h7", "Test SCIMv2", "Another",
                     live.tenant.id):
        assert personal not in text, personal
    assert manifest["source"]["pseudonymised"] is True
    create = json.loads(next((out / "samples").glob("*_post_users_201.json")).read_text())
    fake_name = create["request"]["body"]["userName"]
    assert fake_name.endswith("@example.test") and create["expected"]["body_contains"]["userName"] == fake_name
    lookups = [json.loads(p.read_text()) for p in sorted((out / "samples").glob("*_get_users_200.json"))]
    assert any(fake_name.upper().replace("@", "%40") in s["request"]["path"] for s in lookups)  # case shape kept
    await Replay(await scim.other_tenant("Okta replay", idp="okta"), out).run_all()


async def test_export_filters_by_time_and_client(scim: ScimClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = await debug_tenant(scim, "auto")
    await live.get("/Users", headers={"User-Agent": "Okta SCIM Client 1.0.0"})
    await live.get("/Groups")
    status, _, _ = await live.get("/Users/nope")
    assert status == 404
    okta = await export(scim, capsys, live.tenant.id, tmp_path / "okta", "--client", "okta")
    assert [f["client"] for f in okta["files"]] == ["okta"]
    everything = await export(scim, capsys, live.tenant.id, tmp_path / "all", "--since", "2000-01-01")
    assert [(f["method"], f["status"], f["type"]) for f in everything["files"]] == [
        ("GET", 200, "scim_read"), ("GET", 200, "scim_read"), ("GET", 404, "scim_error")]
    nothing = await export(scim, capsys, live.tenant.id, tmp_path / "none", "--until", "2000-01-01T00:00:00Z")
    assert nothing["files"] == [] and nothing["source"]["until"] == "2000-01-01T00:00:00.000000Z"


async def test_export_without_debug_keeps_errors_and_warns(scim: ScimClient, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    await scim.get("/Users")
    await scim.get("/Users/unknown")
    manifest = await export(scim, capsys, scim.tenant.id, tmp_path / "e")
    assert [f["status"] for f in manifest["files"]] == [404]
    assert "debug logging was off" in manifest["warnings"][0]
    sample = json.loads((tmp_path / "e" / manifest["files"][0]["file"]).read_text())
    assert sample["expected"] == {"status": 404, "body_contains": None}


def test_cli_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "x.db")
    assert main(["--database", db, "activity", "export", "t-nope", "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == "error: no tenant t-nope"
    main(["--database", db, "tenants", "create", "A", "--json"])
    tid = json.loads(capsys.readouterr().out)["id"]
    assert main(["--database", db, "activity", "export", tid, "--since", "yesterday", "--out", str(tmp_path / "o")]) == 1
    assert "--since: 'yesterday' is not an ISO 8601 date or time" in capsys.readouterr().err
    (tmp_path / "o" / "samples").mkdir(parents=True)
    (tmp_path / "o" / "samples" / "001_x.json").write_text("{}")
    assert main(["--database", db, "activity", "export", tid, "--out", str(tmp_path / "o")]) == 1
    assert "already holds samples" in capsys.readouterr().err
    assert main(["--database", db, "activity", tid, "--json"]) == 0  # 'activity TENANT_ID' still lists
    assert json.loads(capsys.readouterr().out) == []


def test_pseudonymiser_is_consistent_and_keeps_vocabulary() -> None:
    p = Pseudonymiser(b"k" * 32)
    body = {"userName": "Alice@Example.com", "name": {"givenName": "Alice"}, "active": True,
            "emails": [{"value": "alice@example.com", "type": "work", "primary": True}],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "Operations": [{"op": "replace", "path": 'emails[type eq "work"].value', "value": "ALICE@EXAMPLE.COM"},
                           {"op": "replace", "path": "active", "value": False}]}
    out = p.walk(body)
    fake = out["emails"][0]["value"]
    assert fake != "alice@example.com" and out["userName"] == fake and out["Operations"][0]["value"] == fake.upper()
    assert out["emails"][0]["type"] == "work" and out["active"] is True and out["schemas"] == body["schemas"]
    assert out["Operations"][1] == {"op": "replace", "path": "active", "value": False}
    assert out["name"]["givenName"] not in ("Alice", fake)
    assert p.filter_text('userName eq "ALICE@example.com" and emails[type eq "work"]') == \
        f'userName eq "{fake}" and emails[type eq "work"]'
    assert Pseudonymiser(b"other" * 8).fake("alice@example.com") != fake  # a per-export secret
