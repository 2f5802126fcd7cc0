"""Packaging: the wheel installs beside anything, and pyproject's package list matches the tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PLUGIN_PACKAGES = {"scim_gateway_okta", "scim_gateway_entra", "scim_gateway_generic"}


def _packages_on_disk(top: Path, name: str) -> set[str]:
    """Every folder under ``top`` holding Python modules, as a dotted package name."""
    found = set()
    for path in top.rglob("*.py"):
        rel = path.parent.relative_to(top)
        if "__pycache__" not in rel.parts:
            found.add(".".join([name, *rel.parts]))
    return found


def test_pyproject_packages_list_matches_the_gateway_subpackages_on_disk() -> None:
    listed = set(SETUPTOOLS["packages"])
    assert {p for p in listed if p == "gateway" or p.startswith("gateway.")} == _packages_on_disk(ROOT / "gateway", "gateway")
    assert listed - {p for p in listed if p.startswith("gateway")} == PLUGIN_PACKAGES


def test_pyproject_maps_the_built_in_plugins_to_collision_free_names() -> None:
    dirs = SETUPTOOLS["package-dir"]
    assert {k: dirs[k] for k in PLUGIN_PACKAGES} == {"scim_gateway_okta": "plugins/okta",
                                                   "scim_gateway_entra": "plugins/entra",
                                                   "scim_gateway_generic": "plugins/generic_scim"}
    assert set(PYPROJECT["project"]["entry-points"]["scim_gateway"].values()) == PLUGIN_PACKAGES
    assert "plugins" not in SETUPTOOLS["packages"]


def test_pyproject_package_data_names_only_files_that_exist() -> None:
    for package, patterns in SETUPTOOLS.get("package-data", {}).items():
        base = ROOT / SETUPTOOLS.get("package-dir", {}).get(package, package)
        for pattern in patterns:
            assert list(base.glob(pattern)), f"package-data {package}: {pattern!r} matches no file"


def test_license_file_is_there_for_the_declared_license() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()


def _run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{cmd}: {out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_serves_from_a_folder_with_its_own_plugins_package(tmp_path: Path) -> None:
    """The installed gateway must not import a bare ``plugins`` package that the user's project may own."""
    from gateway.testing import free_port

    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ROOT)
    (wheel,) = dist.glob("scim_gateway-*.whl")
    top = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert top - {n for n in top if n.endswith(".dist-info")} == {"gateway", *PLUGIN_PACKAGES}
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", wheel)

    project = tmp_path / "project"  # someone else's project, with a package literally called "plugins"
    for sub in ("plugins", "plugins/entra", "plugins/okta"):
        (project / sub).mkdir(parents=True)
        (project / sub / "__init__.py").write_text("MINE = True\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    env.update(PYTHONPATH=str(project), SCIM_GATEWAY_DATABASE=str(tmp_path / "g.db"))
    cli = (python, "-m", "gateway.cli")
    tenant = json.loads(_run(*cli, "tenants", "create", "Contoso", "--idp", "entra", "--scim", "on", "--json",
                             cwd=project, env=env))
    key = json.loads(_run(*cli, "keys", "create", tenant["id"], "--name", "Entra", "--json", cwd=project, env=env))
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(c) for c in (*cli, "serve", "--port", str(port))], cwd=project, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        body = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@contoso.com",
                           "active": "True"}).encode()  # Entra's string boolean: only the Entra plugin fixes it
        req = urllib.request.Request(f"http://127.0.0.1:{port}/scim/v2/{tenant['id']}/Users", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {key['key']}",
                                              "Content-Type": "application/scim+json"})
        for _ in range(300):
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    status, doc = resp.status, json.loads(resp.read())
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        else:
            pytest.fail("the installed gateway did not start: " + (tmp_path / "serve.log").read_text())
        assert status == 201 and doc["active"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_broken_admin_or_portal_module_fails_loudly_instead_of_vanishing() -> None:
    """An ImportError inside the admin API or portal must stop the app, not silently drop those routes."""
    for module in ("gateway.http.admin", "gateway.http.portal"):
        code = (f"import sys; sys.modules[{module!r}] = None\n"
                "from gateway.app import create_app\nfrom gateway.settings import Settings\n"
                "app = create_app(Settings(database=':memory:'), load_entrypoints=False)\n"
                "print(sorted({r.resource.canonical.split('/')[2] for r in app.router.routes() if r.resource}))\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and "halted" in out.stderr, (module, out.stdout, out.stderr)
