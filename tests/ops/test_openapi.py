"""The OpenAPI documents: valid OpenAPI 3.1, built from the validating models, covering every admin route,
and fuzzed by schemathesis against a live `scim-gateway serve` (no 5xx, responses conform, errors are the
documented error body)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi import checks

from gateway.http.openapi import ADMIN_DOC_PATH, SCIM_DOC_PATH, admin_document, scim_document
from gateway.identity import management, sso
from gateway.testing import ScimClient, build_app, free_port

TOKEN = "adm_openapi_" + "w" * 40
# Bounded so the default suite stays fast; SCIM_GATEWAY_FUZZ_EXAMPLES raises it for a longer run.
EXAMPLES = int(os.environ.get("SCIM_GATEWAY_FUZZ_EXAMPLES", "8"))
CHECKS = [checks.status_code_conformance, checks.content_type_conformance, checks.response_schema_conformance]


async def test_openapi_documents_are_served_and_valid(scim: ScimClient) -> None:
    for path in (ADMIN_DOC_PATH, SCIM_DOC_PATH):
        r = await scim.client.get(path)
        assert r.status == 200 and r.content_type == "application/json"
        doc = await r.json()
        validate(doc)  # openapi-spec-validator: raises on an invalid document
        assert doc["openapi"] == "3.1.0"


def test_admin_request_bodies_are_the_validating_models() -> None:
    doc = admin_document()
    schemas = doc["components"]["schemas"]
    for model in (management.TenantCreate, management.TenantUpdate, management.ApiKeyCreate, management.RolesUpdate,
                  management.PortalLinkCreate, sso.SignInRequest):
        own = model.model_json_schema(ref_template="#/components/schemas/{model}")
        own.pop("$defs", None)
        assert schemas[model.__name__] == own
    create = doc["paths"]["/tenants"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create == {"$ref": "#/components/schemas/TenantCreate"}
    assert schemas["TenantCreate"]["additionalProperties"] is False  # unknown fields refused, as the API does


def test_every_admin_route_is_documented(tmp_path: Path) -> None:
    app = build_app(tmp_path / "routes.db", admin_token=TOKEN)
    documented = {(m.upper(), "/api/v1" + p) for p, item in admin_document()["paths"].items() for m in item}
    served = set()
    for route in app.router.routes():
        info = route.resource.canonical if route.resource is not None else ""
        if info.startswith("/api/v1/") and route.method not in ("HEAD", "*") and info != ADMIN_DOC_PATH:
            served.add((route.method, info))
    assert served - documented == set(), "add these routes to ADMIN_OPERATIONS in gateway/http/openapi.py"
    assert documented - served == set()


# --- schemathesis against a live server -----------------------------------------------------------
def _call(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("openapi-live")
    port = free_port()
    env = {**os.environ, "SCIM_GATEWAY_DATABASE": str(tmp / "live.db"), "SCIM_GATEWAY_ADMIN_TOKEN": TOKEN,
           "SCIM_GATEWAY_LOG_JSON": "true", "SCIM_GATEWAY_LOG_LEVEL": "WARNING"}
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        tenant = _call("POST", base + "/api/v1/tenants", {"name": "Fuzz", "scim_enabled": True}, TOKEN)
        key = _call("POST", base + f"/api/v1/tenants/{tenant['id']}/api-keys", {"name": "fuzz"}, TOKEN)["key"]
        req = urllib.request.Request(base + f"/scim/v2/{tenant['id']}/Users", method="POST", headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/scim+json"}, data=json.dumps({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "fuzz@example.com"}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            user = json.loads(r.read())
        yield {"base": base, "tenant": tenant["id"], "key": key, "user": user["id"], "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert "Traceback" not in (tmp / "server.log").read_text()


def test_live_server_serves_the_documents_it_is_fuzzed_with(live: dict[str, Any]) -> None:
    for path, built in ((ADMIN_DOC_PATH, admin_document()), (SCIM_DOC_PATH, scim_document())):
        assert json.loads(urllib.request.urlopen(live["base"] + path, timeout=10).read()) == built


# The documents are built in-process at collection (the live server serves the same bytes, checked
# above); schemathesis' lazy from_fixture loader does not work with this pytest.
admin_api = schemathesis.openapi.from_dict(admin_document())
scim_api = schemathesis.openapi.from_dict(scim_document())
_FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                 phases=[Phase.explicit, Phase.generate], derandomize=True, database=None)


def _aim(case: Any, live: dict[str, Any]) -> None:
    """Point most cases at the real tenant and user, so fuzzing reaches past the 404s."""
    params = case.path_parameters or {}
    if "tenant_id" in params and case.operation.definition.raw.get("operationId") != "deleteTenant":
        if len(str(params["tenant_id"])) % 4 != 0:  # about one case in four keeps its random id
            params["tenant_id"] = live["tenant"]
    if "user_id" in params or "id" in params:
        name = "user_id" if "user_id" in params else "id"
        if len(str(params[name])) % 3 == 0 and case.method in ("GET", "PUT"):
            params[name] = live["user"]


@admin_api.parametrize()
@_FUZZ
def test_admin_api_conforms_to_its_document(case: Any, live: dict[str, Any]) -> None:
    _aim(case, live)
    response = case.call(base_url=live["base"] + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=CHECKS)
    body = response.json() if response.status_code >= 400 else None
    if body is not None and not (case.operation.path.endswith("/sso/sign-in") and body.get("decision") == "reject"):
        assert set(body) == {"error", "detail"} and isinstance(body["error"], str), body


@scim_api.parametrize()
@_FUZZ
def test_scim_api_conforms_to_its_document(case: Any, live: dict[str, Any]) -> None:
    _aim(case, live)
    if case.method == "DELETE" and (case.path_parameters or {}).get("id") == live["user"]:
        case.path_parameters["id"] = "not-the-fuzz-user"  # keep the user other cases read
    response = case.call(base_url=f"{live['base']}/scim/v2/{live['tenant']}",
                         headers={"Authorization": f"Bearer {live['key']}"}, timeout=15)
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        body = response.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], body
        assert body["status"] == str(response.status_code), body



