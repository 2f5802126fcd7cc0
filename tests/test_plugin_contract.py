"""Meta-tests that keep the plugin contract, its docs, its tests and the layering rules in step.

- every hook in ``gateway/hookspecs.py`` has a ``docs/plugin_hooks.md`` heading with its exact
  signature, and a ``test_hook_<hook>...`` test somewhere under ``tests/`` or ``plugins/``;
- the exact firing order of the hooks for a POST and a PATCH (a recording plugin);
- per-request hooks run only on the identified IdP plugin (Okta's never see Entra traffic);
- ``gateway/core`` and ``gateway/store`` import neither aiohttp nor pluggy;
- no code under ``gateway/`` names an IdP (comments and docstrings may cite one);
- the example third-party plugin loads through its entry point and handles its traffic.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from gateway import Change, Client, ScimRequest, hookimpl
from gateway.testing import USER_SCHEMA, ScimClient, add_tenant

ROOT = Path(__file__).resolve().parent.parent
HOOKSPECS = ROOT / "gateway" / "hookspecs.py"
DOCS = ROOT / "docs" / "plugin_hooks.md"
PER_REQUEST = ("scim_normalize_query", "scim_normalize_resource", "scim_normalize_patch", "scim_correlation_filter",
               "scim_shape_response", "scim_resource_changed")


def hook_signatures() -> dict[str, str]:
    """``{hook: "name(arg: T, ...) -> R"}`` exactly as written in hookspecs.py."""
    tree = ast.parse(HOOKSPECS.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("scim_"):
            args = ", ".join(ast.unparse(a) for a in node.args.args)
            out[node.name] = f"{node.name}({args}) -> {ast.unparse(node.returns) if node.returns else 'None'}"
    return out


HOOKS = hook_signatures()


def test_hookspecs_are_found() -> None:
    assert "scim_identify_client" in HOOKS and len(HOOKS) >= 8


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_has_docs_heading_with_exact_signature(hook: str) -> None:
    headings = [line for line in DOCS.read_text().splitlines() if line.startswith("#")]
    assert any(HOOKS[hook] in h for h in headings), f"docs/plugin_hooks.md needs a heading containing `{HOOKS[hook]}`"


def _test_names() -> set[str]:
    names: set[str] = set()
    for folder in (ROOT / "tests", ROOT / "plugins"):
        for path in folder.rglob("test_*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_hook_"):
                    names.add(node.name)
    return names


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_has_a_test_hook_test(hook: str) -> None:
    assert any(n == f"test_hook_{hook}" or n.startswith(f"test_hook_{hook}_") for n in _test_names()), (
        f"add a test named test_hook_{hook}_<case> under tests/ or plugins/"
    )


# -- firing order, with a recording IdP plugin --------------------------------------------------


class Recorder:
    """An IdP plugin that claims requests carrying ``X-Recorder: 1`` and records every hook call.

    Every implementation declares only the parameters it uses (several none at all): the
    fewer-parameters promise of docs/plugin_hooks.md is what this exercises.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def scim_startup(self) -> None:
        self.calls.append("scim_startup")

    @hookimpl
    def scim_identify_client(self, request: ScimRequest) -> str | None:
        self.calls.append("scim_identify_client")
        return "recorder" if request.headers.get("x-recorder") == "1" else None

    @hookimpl
    def scim_normalize_query(self) -> None:
        self.calls.append("scim_normalize_query")

    @hookimpl
    def scim_normalize_resource(self, payload: dict[str, Any]) -> None:
        self.calls.append("scim_normalize_resource")

    @hookimpl
    def scim_normalize_patch(self) -> None:
        self.calls.append("scim_normalize_patch")

    @hookimpl
    def scim_correlation_filter(self) -> str | None:
        self.calls.append("scim_correlation_filter")
        return None

    @hookimpl
    def scim_shape_response(self, client: Client, body: dict[str, Any] | None) -> None:
        self.calls.append("scim_shape_response")
        if body is not None:
            body.setdefault("urn:example:recorder", {"client": client.name})

    @hookimpl
    def scim_resource_changed(self, change: Change) -> None:
        self.calls.append(f"scim_resource_changed:{change.action}")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway_plugins(recorder: Recorder) -> list[Any]:
    return [("recorder", recorder)]


REC = {"X-Recorder": "1"}


async def test_hook_firing_order_post_and_patch(scim: ScimClient, recorder: Recorder) -> None:
    assert recorder.calls == ["scim_startup"]
    recorder.calls.clear()
    status, user, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "order@example.com"}, headers=REC)
    assert status == 201
    assert recorder.calls == ["scim_identify_client", "scim_normalize_resource", "scim_correlation_filter",
                              "scim_shape_response", "scim_resource_changed:created"]
    recorder.calls.clear()
    status, _, _ = await scim.patch(f"/Users/{user['id']}", [{"op": "replace", "path": "active", "value": False}],
                                    headers=REC, params={"attributes": "active"})
    assert status == 200
    assert recorder.calls == ["scim_identify_client", "scim_normalize_query", "scim_normalize_patch",
                              "scim_shape_response", "scim_resource_changed:deactivated"]


async def test_hook_scim_startup_runs_once_before_requests(scim: ScimClient, recorder: Recorder) -> None:
    await scim.get("/Users", headers=REC)
    await scim.get("/Users", headers=REC)
    assert recorder.calls.count("scim_startup") == 1 and recorder.calls[0] == "scim_startup"


async def test_hook_scim_shape_response_edits_success_and_error_bodies(scim: ScimClient) -> None:
    _, body, _ = await scim.get("/Users", headers=REC)
    assert body["urn:example:recorder"] == {"client": "recorder"}
    status, err, _ = await scim.get("/Users/does-not-exist", headers=REC)
    assert status == 404 and err["urn:example:recorder"] == {"client": "recorder"}


async def test_hook_scim_correlation_filter_none_falls_back_to_core_default(scim: ScimClient) -> None:
    """The recorder returns None, so the core default (``userName eq``) still refuses a duplicate."""
    await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "dup@example.com"}, headers=REC)
    status, err, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "DUP@example.com"}, headers=REC)
    assert status == 409 and err["scimType"] == "uniqueness"


async def test_hook_scim_resource_changed_after_commit_only(scim: ScimClient, recorder: Recorder) -> None:
    status, _, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA]}, headers=REC)  # no userName: 400
    assert status == 400 and not any(c.startswith("scim_resource_changed") for c in recorder.calls)


async def test_hook_scim_identify_client_unrecognised_goes_to_generic(scim: ScimClient, recorder: Recorder) -> None:
    _, body, _ = await scim.get("/Users")  # no X-Recorder: the recorder's other hooks must not run
    assert "urn:example:recorder" not in body
    assert "scim_shape_response" not in recorder.calls


# -- per-client hook subsets ------------------------------------------------------------------


async def test_okta_hooks_never_run_for_entra_requests(scim: ScimClient) -> None:
    """Entra-identified traffic runs the Entra plugin's hooks, never Okta's (pluggy subset callers)."""
    seen: list[tuple[str, list[str]]] = []
    pm = scim.gateway.plugins.pm
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append((name, [i.plugin_name for i in impls])), lambda *a: None
    )
    try:
        ua = {"User-Agent": "Microsoft Azure AD SCIM provisioning"}
        _, user, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "e@contoso.com", "groups": []},
                                     headers=ua)
        await scim.patch(f"/Users/{user['id']}", [{"op": "Replace", "path": "active", "value": "False"}], headers=ua)
        await scim.get("/Users", headers=ua, params={"filter": "userName eq e@contoso.com"})
    finally:
        undo()
    per_request = [(n, p) for n, p in seen if n in PER_REQUEST]
    assert per_request and all("okta" not in plugins for _, plugins in per_request), per_request
    assert any("entra" in plugins for _, plugins in per_request)


# -- layering ----------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


LAYERED = sorted(p.relative_to(ROOT).as_posix() for d in ("core", "store") for p in (ROOT / "gateway" / d).rglob("*.py"))


@pytest.mark.parametrize("module", LAYERED)
def test_core_and_store_import_neither_aiohttp_nor_pluggy(module: str) -> None:
    assert not _imports(ROOT / module) & {"aiohttp", "pluggy"}


_IDP = re.compile(r"okta|entra|azure|google|microsoft|\baad", re.IGNORECASE)


def idp_names_in_code(path: Path) -> list[str]:
    """IdP names in identifiers and string literals; comments and docstrings are documentation and may cite one."""
    toks = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    hits = []
    skip = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT}
    for i, tok in enumerate(toks):
        if tok.type not in (tokenize.NAME, tokenize.STRING) or not _IDP.search(tok.string):
            continue
        if tok.type == tokenize.STRING:
            before = next((t for t in reversed(toks[:i]) if t.type not in skip), None)
            after = next((t for t in toks[i + 1 :] if t.type not in (tokenize.COMMENT,)), None)
            starts_statement = before is None or before.type in (tokenize.OP,) and before.string == ":" or (
                before.start[0] < tok.start[0] and before.type != tokenize.OP
            )
            if starts_statement and after is not None and after.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                continue  # a docstring (or bare string statement)
        hits.append(f"{path.name}:{tok.start[0]}: {tok.string[:60]}")
    return hits


GATEWAY_MODULES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "gateway").rglob("*.py"))


@pytest.mark.parametrize("module", GATEWAY_MODULES)
def test_gateway_code_names_no_idp(module: str) -> None:
    assert idp_names_in_code(ROOT / module) == []


def test_idp_scan_catches_code_and_skips_docs(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text('"""Entra sends this."""\n# okta does that\nX = 1\nif client.name == "okta":\n    pass\n'
                      'def f():\n    """Azure."""\n    return entra_fix()\n')
    assert [h.split(": ")[1] for h in idp_names_in_code(sample)] == ['"okta"', "entra_fix"]


# -- the example third-party plugin, through its entry point --------------------------------------

GOOGLE_INSTALLED = any(ep.name == "google" for ep in entry_points(group="scim_gateway"))
needs_google = pytest.mark.skipif(not GOOGLE_INSTALLED, reason="pip install --no-deps -e examples/scim_gateway_google")


@needs_google
async def test_example_plugin_loads_through_entry_point(scim: ScimClient) -> None:
    host = scim.gateway.plugins
    assert "google" in host.names() and "google" in host.idp_plugins()
    body = {"schemas": ["urn:scim:schemas:core:1.0", USER_SCHEMA], "userName": "jane.doe@example.com", "active": True}
    status, doc, _ = await scim.request("POST", "/Users", body, headers={"Content-Type": "application/json"})
    assert status == 201 and doc["schemas"] == [USER_SCHEMA]


@needs_google
async def test_example_plugin_can_be_a_tenants_idp(scim: ScimClient) -> None:
    from gateway.identity import management

    idps = scim.gateway.plugins.idp_plugins()
    made = await management.create_tenant(scim.gateway.store, management.TenantCreate(name="Google tenant", idp="google",
                                                                            scim_enabled=True),
                                     scim.gateway.settings.scim_url, idps=idps)
    assert made["idp"] == "google"
    with pytest.raises(management.AdminError) as err:
        await management.create_tenant(scim.gateway.store, management.TenantCreate(name="Typo", idp="gogle"),
                                  scim.gateway.settings.scim_url, idps=idps)
    assert err.value.status == 400 and "gogle" in err.value.detail and "google" in err.value.detail
