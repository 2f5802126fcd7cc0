"""The self-test: each built-in IdP's sequence against this gateway, against broken endpoints, and
against an independent SCIM server (scim2-server), through the runner, the CLI and the admin API."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.selftest import Target, find_sequence, run
from gateway.selftest.runner import Report
from gateway.selftest.sequence import Expected, SequenceError, judge, parse
from gateway.testing import ScimClient, add_tenant, build_app, free_port

ROOT = Path(__file__).resolve().parent.parent
IDPS = ["okta", "entra", "generic"]
ADMIN = "adm-selftest-token"


@pytest.fixture
def gateway_app(gateway_database: str, gateway_plugins: list[Any]) -> web.Application:
    return build_app(gateway_database, plugins=gateway_plugins, admin_token=ADMIN)


def origin(scim: ScimClient) -> str:
    return str(scim.client.make_url("")).rstrip("/")


async def tenant_target(scim: ScimClient, idp: str, *, scim_on: bool = True) -> tuple[Target, str]:
    tenant, key = await add_tenant(scim.app, f"{idp} selftest", idp=idp, scim=scim_on)
    return Target(f"{origin(scim)}/scim/v2/{tenant.id}", key), tenant.id


def honest(report: Report) -> None:
    """Every verdict follows from what was received, judged by the expectation the step states."""
    for s in report.steps:
        if s.result == "not_run":
            assert s.received is None and s.idp_action is None, s
            continue
        assert s.sent is not None and s.sent["headers"]["Authorization"] == "Bearer [redacted]"
        if s.received is None:
            assert s.result == "fail" and s.idp_action == "retry"
            continue
        if s.phase == "sequence":
            verdict = judge(Expected(**s.expected), s.received["status"], s.received["body"]) if s.expected else None
            assert (verdict is None) == (s.result == "pass"), (s.name, verdict, s.result)
            if s.kind == "idp":
                assert s.idp_action == ("accept" if s.result == "pass" else s.idp_action) and s.idp_action
        assert s.doc.startswith(("RFC 764", "Okta", "Microsoft")) and "https://" in s.doc
    assert report.passed == all(s.result == "pass" for s in report.steps)


# -- this gateway -------------------------------------------------------------------------------


@pytest.mark.parametrize("idp", IDPS)
async def test_selftest_passes_every_step_against_this_gateway(scim: ScimClient, idp: str) -> None:
    target, tenant_id = await tenant_target(scim, idp)
    sequence = find_sequence(scim.gateway.plugins, idp)
    report = await run(sequence, target)
    failed = [(s.name, s.reason) for s in report.steps if s.result != "pass"]
    assert report.passed and not failed, failed
    honest(report)
    sent = [s for s in report.steps if s.phase == "sequence"]
    assert [s.name for s in sent] == [step.name for step in sequence.steps]  # in order, every one
    assert all(s.idp_action == "accept" for s in sent if s.kind == "idp")
    # the IdP's own headers went out on every request
    for s in sent:
        for name, value in sequence.headers.items():
            if name.lower() != "content-type" or s.sent and s.sent["body"] is not None:
                assert s.sent and s.sent["headers"][name] == value
    # cleaned up: nothing the run created is left in the tenant
    async with scim.gateway.store.read() as r:
        from gateway.store.base import Query

        assert (await r.query_users(tenant_id, Query())).total == 0
        assert (await r.query_groups(tenant_id, Query())).total == 0


async def test_selftest_keep_leaves_what_it_created(scim: ScimClient) -> None:
    target, tenant_id = await tenant_target(scim, "okta")
    report = await run(find_sequence(scim.gateway.plugins, "okta"), target, keep=True)
    assert report.passed and not [s for s in report.steps if s.phase == "cleanup"]
    assert len(report.kept) == 1 and report.kept[0].startswith("/Users/")  # Okta deletes its group itself, never a user
    async with scim.gateway.store.read() as r:
        assert await r.get_user(tenant_id, report.kept[0].rsplit("/", 1)[1]) is not None


@pytest.mark.parametrize("idp", IDPS)
async def test_selftest_scim_off_says_so_at_the_first_step(scim: ScimClient, idp: str) -> None:
    target, _ = await tenant_target(scim, idp, scim_on=False)
    report = await run(find_sequence(scim.gateway.plugins, idp), target)
    first, rest = report.steps[0], report.steps[1:]
    assert first.result == "fail" and first.received and first.received["status"] == 403
    assert "SCIM provisioning is disabled" in first.reason and first.idp_action == "quarantine"
    assert rest and all(s.result == "not_run" and "goes no further" in s.reason for s in rest)
    assert not report.passed and report.counts() == {"pass": 0, "fail": 1, "not_run": len(rest)}
    honest(report)


async def test_selftest_wrong_token_is_a_first_step_failure(scim: ScimClient) -> None:
    target, _ = await tenant_target(scim, "entra")
    report = await run(find_sequence(scim.gateway.plugins, "entra"), Target(target.base_url, "scimgw_wrong"))
    assert report.steps[0].received and report.steps[0].received["status"] == 401
    assert report.counts()["fail"] == 1 and "target" not in report.steps[0].reason


async def test_selftest_unreachable_endpoint_is_retry() -> None:
    from gateway.plugin_manager import PluginHost

    report = await run(find_sequence(PluginHost(), "generic"), Target(f"http://127.0.0.1:{free_port()}/scim/v2/x", "k"),
                       timeout=5)
    assert report.steps[0].result == "fail" and report.steps[0].received is None
    assert report.steps[0].idp_action == "retry" and report.steps[0].reason.startswith("no answer")
    honest(report)


# -- a broken endpoint: group PATCH answered 200 with no members ------------------------------------


@pytest.fixture
async def members_dropping_double(scim: ScimClient) -> AsyncIterator[str]:
    """A SCIM server that forwards to the gateway but ignores membership: a group PATCH loses its
    ``members`` operations and is answered 200 with the group minus ``members``."""
    upstream = origin(scim)
    session = aiohttp.ClientSession()

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type", "user-agent")}
        url = upstream + request.path_qs
        is_group_patch = request.method == "PATCH" and "/Groups/" in request.path
        if is_group_patch:
            doc = json.loads(body)
            doc["Operations"] = [op for op in doc["Operations"]
                                 if not str(op.get("path") or "").lower().startswith("members")]
            body = json.dumps(doc).encode()
            if doc["Operations"]:
                async with session.patch(url, data=body, headers=headers) as resp:
                    await resp.read()
            async with session.get(url.split("?")[0], headers=headers) as resp:
                group = await resp.json(content_type=None)
            group.pop("members", None)
            return web.json_response(group, status=200, content_type="application/scim+json")
        async with session.request(request.method, url, data=body or None, headers=headers) as resp:
            raw = await resp.read()
            return web.Response(status=resp.status, body=raw, content_type=resp.content_type if raw else None)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await session.close()


# Which steps must fail, per IdP. Okta and Entra accept a group PATCH answered 200 without members
# (Okta REF: "members can be null"; Entra reads nothing back), so only the self-test's read-back
# names the loss; the RFC says a 200 carries the whole resource, so the generic client fails at once.
BROKEN_MEMBERS = {
    "okta": {"get_group_with_member"},
    "entra": {"get_group_with_members"},
    "generic": {"add_group_member", "get_group_with_member"},
}


@pytest.mark.parametrize("idp", IDPS)
async def test_selftest_names_the_steps_a_membership_dropping_server_fails(
    scim: ScimClient, members_dropping_double: str, idp: str
) -> None:
    target, _ = await tenant_target(scim, idp)
    broken = Target(target.base_url.replace(origin(scim), members_dropping_double), target.token)
    report = await run(find_sequence(scim.gateway.plugins, idp), broken)
    assert {s.name for s in report.steps if s.result != "pass"} == BROKEN_MEMBERS[idp]
    assert not report.passed
    honest(report)
    by_name = {s.name: s for s in report.steps}
    for name in BROKEN_MEMBERS[idp]:
        s = by_name[name]
        assert "members" in s.reason and s.received and s.received["status"] == 200
        assert s.idp_action == (None if s.kind == "verify" else "quarantine")
    if idp != "generic":  # the vendor would have accepted the PATCH itself: the report says so
        patch = next(s for s in report.steps if s.sent and s.sent["method"] == "PATCH" and "/Groups/" in s.sent["url"])
        assert patch.result == "pass" and patch.idp_action == "accept" and patch.received["status"] == 200


# -- an independent SCIM server ---------------------------------------------------------------------


@pytest.fixture
def scim2_server(tmp_path: Path) -> Any:
    """The reference ``scim2-server`` command on a loopback port, its request log captured."""
    port = free_port()
    log = (tmp_path / "scim2-server.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-c", "from scim2_server.testserver.cli import main; main()",
                             "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", "s2-token"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while "HTTP/1.1" not in (tmp_path / "scim2-server.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"scim2-server did not start: {(tmp_path / 'scim2-server.log').read_text()}")
            try:
                import urllib.request

                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/ServiceProviderConfig?{PROBE}", timeout=1)
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v2", tmp_path / "scim2-server.log"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


_LOGGED = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) /v2(\S*) HTTP/1\.1" (\d{3})')
PROBE = "startup-probe=1"  # the fixture's own requests, told apart from the run's in the server's log


def served_by(log: Path) -> list[tuple[str, str, str]]:
    return [entry for entry in _LOGGED.findall(log.read_text()) if PROBE not in entry[1]]


@pytest.mark.parametrize("idp", IDPS)
async def test_selftest_against_scim2_server_reports_honestly(scim2_server: Any, idp: str) -> None:
    from gateway.plugin_manager import PluginHost

    base, log = scim2_server
    before = len(served_by(log))
    report = await run(find_sequence(PluginHost(), idp), Target(base, "s2-token"))
    honest(report)
    # what the report says came back is what the server logged it answered, request for request (the
    # threaded server may write its log lines slightly out of order, so they are compared as a multiset)
    reported = [(s.sent["method"], s.sent["url"].split("?")[0][len(base):], s.received["status"])
                for s in report.steps if s.sent and s.received]
    deadline = time.monotonic() + 10  # a request's log line is written just after its answer is sent
    while len(served := served_by(log)[before:]) < len(reported) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert Counter((m, p.split("?")[0], int(st)) for m, p, st in served) == Counter(reported)
    # nothing the run created is left on the server
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer s2-token"}) as http:
        for collection in ("Users", "Groups"):
            async with http.get(f"{base}/{collection}") as resp:
                assert (await resp.json(content_type=None))["totalResults"] == 0
    if idp == "entra":
        # scim2-server refuses Entra's ADSCIM group schema URI: a real incompatibility, named at its step
        create = next(s for s in report.steps if s.name == "create_group")
        assert create.result == "fail" and create.received and create.received["status"] == 400
        assert "ADSCIM" in create.reason and not report.passed
    else:
        assert report.passed, [(s.name, s.reason) for s in report.steps if s.result != "pass"]


# -- sequences as data -----------------------------------------------------------------------------


def test_sequence_refuses_bad_documents_with_the_field_named() -> None:
    good = json.loads((ROOT / "plugins" / "generic_scim" / "selftest.json").read_text())
    bad = json.loads(json.dumps(good))
    bad["steps"][0]["cite"]["doc"] = "NOPE"
    with pytest.raises(SequenceError, match="cites 'NOPE'"):
        parse(bad)
    bad = json.loads(json.dumps(good))
    bad["steps"][1]["name"] = bad["steps"][0]["name"]
    with pytest.raises(SequenceError, match="used twice"):
        parse(bad)
    bad = json.loads(json.dumps(good))
    bad["steps"][2]["request"]["method"] = "FETCH"
    with pytest.raises(SequenceError, match=r"steps\.2\.request\.method"):
        parse(bad)
    with pytest.raises(SequenceError, match="not valid JSON"):
        parse("{")


@pytest.mark.parametrize("folder", ["okta", "entra"])
def test_sequence_steps_play_the_recorded_samples_they_name(folder: str) -> None:
    seq = parse((ROOT / "plugins" / folder / "selftest.json").read_text())
    named = [s for s in seq.steps if s.sample]
    assert len(named) >= len(seq.steps) - 2
    for step in named:
        sample = json.loads((ROOT / "plugins" / folder / "tests" / "samples" / f"{step.sample}.json").read_text())
        assert sample["request"]["method"] == step.request.method, step.name
        assert sample["request"]["path"].split("?")[0].split("/")[1] == step.request.path.split("?")[0].split("/")[1]


# -- CLI --------------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_selftest_tenant_json_one_object_per_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    code, out, _ = _cli(capsys, "--database", db, "tenants", "create", "Acme", "--idp", "entra", "--scim", "on", "--json")
    tenant = json.loads(out)["id"]
    code, out, err = _cli(capsys, "--database", db, "selftest", "--idp", "entra", "--tenant", tenant, "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0, err
    assert [o["step"] for o in lines] == list(range(1, len(lines) + 1)) and all(o["result"] == "pass" for o in lines)
    assert lines[0]["name"] == "test_connection_user" and lines[0]["sent"]["method"] == "GET"
    # the temporary key is revoked once the run ends
    code, out, _ = _cli(capsys, "--database", db, "keys", "list", tenant, "--json")
    keys = json.loads(out)
    assert len(keys) == 1 and keys[0]["name"].startswith("selftest") and keys[0]["revoked"]


def test_cli_selftest_scim_off_exits_1_naming_step_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    _, out, _ = _cli(capsys, "--database", db, "tenants", "create", "Off", "--idp", "okta", "--json")
    code, out, _ = _cli(capsys, "--database", db, "selftest", "--idp", "okta", "--tenant", json.loads(out)["id"])
    assert code == 1
    assert re.search(r"^\s+1 FAIL\s+test_api_credentials .*-> 403", out, re.M)
    assert "SCIM provisioning is disabled" in out and "result: FAIL (0 passed, 1 failed, 22 not run)" in out
    assert "the IdP would: fail the provisioning task" in out and "developer.okta.com" in out


def test_cli_selftest_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    code, _, err = _cli(capsys, "--database", db, "selftest", "--idp", "generic", "--tenant", "t-nope")
    assert code == 1 and err.strip() == "error: no tenant 't-nope'"
    _, out, _ = _cli(capsys, "--database", db, "tenants", "create", "A", "--scim", "on", "--json")
    code, _, err = _cli(capsys, "--database", db, "selftest", "--idp", "nosuch", "--tenant", json.loads(out)["id"])
    assert code == 1 and "no installed plugin has a self-test sequence for idp 'nosuch'" in err and "okta" in err
    code, _, err = _cli(capsys, "selftest", "--idp", "generic", "--url", "http://127.0.0.1:9/scim")
    assert code == 1 and "--url needs --token" in err
    # a usage error: one line and exit 2 (the CLI's error framework), never a SystemExit from argparse
    assert main(["selftest", "--idp", "generic", "--tenant", "x", "--url", "http://127.0.0.1:9"]) == 2
    assert "not allowed with argument --tenant" in capsys.readouterr().err


async def test_cli_selftest_url_against_a_running_gateway(scim: ScimClient, capsys: pytest.CaptureFixture[str]) -> None:
    target, _ = await tenant_target(scim, "okta")
    # main() runs its own event loop: give it a thread, while this loop keeps serving the gateway
    code = await asyncio.to_thread(main, ["selftest", "--idp", "okta", "--url", target.base_url, "--token", target.token])
    out = capsys.readouterr().out
    assert code == 0 and "result: PASS (24 passed, 0 failed, 0 not run)" in out and target.token not in out


# -- admin API --------------------------------------------------------------------------------------


async def test_admin_api_selftest(scim: ScimClient) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    url = f"/api/v1/tenants/{scim.tenant.id}/selftest"
    resp = await scim.client.post(url, json={"idp": "generic"}, headers=auth)
    report = await resp.json()
    assert resp.status == 200 and report["passed"] is True and report["counts"]["fail"] == 0
    assert [s["name"] for s in report["steps"]][:2] == ["list_users_first_page", "service_provider_config"]
    assert all(s["result"] == "pass" and s["doc"] for s in report["steps"])
    keys = [k for k in (await (await scim.client.get(f"/api/v1/tenants/{scim.tenant.id}/api-keys", headers=auth)).json())["api_keys"]
            if k["name"].startswith("selftest")]
    assert len(keys) == 1 and keys[0]["revoked"]

    for body, status, code in (({"idp": "nosuch"}, 400, "unknown_idp"), ({"idp": 3}, 400, "validation_error"),
                               ({"idp": "okta", "extra": 1}, 400, "validation_error")):
        resp = await scim.client.post(url, json=body, headers=auth)
        assert resp.status == status and (await resp.json())["error"] == code
    resp = await scim.client.post("/api/v1/tenants/t-nope/selftest", json={"idp": "okta"}, headers=auth)
    assert resp.status == 404 and (await resp.json()) == {"error": "not_found", "detail": "no tenant t-nope"}
    resp = await scim.client.post(url, json={"idp": "okta"})
    assert resp.status == 401


async def test_admin_api_selftest_scim_off(scim: ScimClient) -> None:
    off = await scim.other_tenant("Off", idp="entra", scim=False)
    resp = await scim.client.post(f"/api/v1/tenants/{off.tenant.id}/selftest", json={"idp": "entra"},
                                  headers={"Authorization": f"Bearer {ADMIN}"})
    report = await resp.json()
    assert resp.status == 200 and report["passed"] is False
    assert report["steps"][0]["result"] == "fail" and "disabled" in report["steps"][0]["reason"]
    assert {s["result"] for s in report["steps"][1:]} == {"not_run"}
