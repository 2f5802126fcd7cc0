"""The plugin host: every hook through pluggy, one name per plugin, a deterministic order, a typed
stash and plugin settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from aiohttp.test_utils import TestClient

import scim_gateway_entra
from gateway import Change, Client, ScimRequest, Stash, StashKey, hookimpl
from gateway.plugin_manager import PluginHost, plugin_entry_points
from gateway.settings import Settings, plugin_settings_from_env
from gateway.testing import USER_SCHEMA, ScimClient, add_tenant, build_app

AppClient = Callable[..., Any]


async def _client(aiohttp_client: AppClient, tmp_path: Path, plugins: list[Any], **settings: Any) -> ScimClient:
    client: TestClient[Any, Any] = await aiohttp_client(build_app(tmp_path / "g.db", plugins=plugins, **settings))
    tenant, key = await add_tenant(client.app, "Hooks")
    return ScimClient(client, tenant, key)


class Minimal:
    """A cross-cutting plugin whose notification and start-up hooks take fewer parameters than the spec."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    @hookimpl
    async def scim_startup(self) -> None:  # no parameters at all, and a coroutine
        self.calls.append("startup")

    @hookimpl
    def scim_resource_changed(self, change: Change) -> None:  # no client
        self.calls.append(("changed", change.action))


class AsyncChanged:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    async def scim_resource_changed(self, change: Change) -> None:
        self.calls.append(change.action)


async def test_hook_scim_resource_changed_with_fewer_parameters_and_coroutines(aiohttp_client: AppClient,
                                                                              tmp_path: Path) -> None:
    minimal, coro = Minimal(), AsyncChanged()
    scim = await _client(aiohttp_client, tmp_path, [("minimal", minimal), ("coro", coro)])
    assert minimal.calls == ["startup"]
    await scim.create_user("few@example.com")
    assert minimal.calls == ["startup", ("changed", "created")]
    assert coro.calls == ["created"]


class Ordered:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    @hookimpl
    def scim_resource_changed(self) -> None:
        self.log.append(self.name)


class First(Ordered):
    @hookimpl(tryfirst=True)
    def scim_resource_changed(self) -> None:
        self.log.append(self.name)


class Broken:
    @hookimpl
    def scim_resource_changed(self) -> None:
        raise RuntimeError("notifier down")


async def test_hook_scim_resource_changed_keeps_pluggy_order_and_isolates_failures(aiohttp_client: AppClient,
                                                                                  tmp_path: Path) -> None:
    log: list[str] = []
    plugins = [("a", Ordered(log, "a")), ("broken", Broken()), ("b", Ordered(log, "b")), ("first", First(log, "first"))]
    scim = await _client(aiohttp_client, tmp_path, plugins)
    seen: list[tuple[str, list[str]]] = []
    undo = scim.gateway.plugins.pm.add_hookcall_monitoring(
        lambda name, impls, kw: seen.append((name, [i.plugin_name for i in impls])), lambda *a: None)
    try:
        status, _, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "order@example.com"})
    finally:
        undo()
    assert status == 201  # a failing notifier never fails the committed request
    assert log == ["first", "a", "b"]  # tryfirst, then explicit plugins in the order given
    assert [p for n, p in seen if n == "scim_resource_changed"] == [["first"], ["a"], ["broken"], ["b"]]  # traced


async def test_hook_scim_startup_without_parameters_runs_and_may_refuse(aiohttp_client: AppClient,
                                                                       tmp_path: Path) -> None:
    class Refuses:
        @hookimpl
        def scim_startup(self) -> None:
            raise RuntimeError("bad configuration")

    with pytest.raises(RuntimeError, match="bad configuration"):
        await aiohttp_client(build_app(tmp_path / "r.db", plugins=[("refuses", Refuses())]))


# -- names and order -------------------------------------------------------------------------------


def test_a_plugin_has_one_name_its_entry_point_name() -> None:
    host = PluginHost([scim_gateway_entra], load_entrypoints=False)
    assert "entra" in host.names() and "scim_gateway_entra" not in host.names()
    both = PluginHost([scim_gateway_entra])  # installed and passed explicitly: the same plugin, once
    assert both.names().count("entra") == 1 and "scim_gateway_entra" not in both.names()

    class Anonymous:
        scim_plugin_name = "ignored"  # no second way to name a plugin

    with pytest.raises(ValueError, match=r"\(name, plugin\)"):
        PluginHost([Anonymous()], load_entrypoints=False)


class Claims:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def scim_identify_client(self) -> str | None:
        return self.name


def test_identification_order_is_explicit_then_third_party_then_built_in_by_name() -> None:
    eps = plugin_entry_points()
    builtin = {"okta", "entra", "generic"}
    third = sorted(ep.name for ep in eps if ep.name not in builtin)
    assert [ep.name for ep in eps] == [*third, "entra", "generic", "okta"]
    host = PluginHost([("zeta", Claims("zeta")), ("alpha", Claims("alpha"))])
    idps = [n for n in host.idp_plugins() if n in {"zeta", "alpha", *builtin} or n in third]
    assert idps[:2] == ["zeta", "alpha"]  # explicit plugins, in the order given
    assert idps[-3:] == ["entra", "okta", "generic"]  # built-ins by name; generic is trylast
    assert host.hook.scim_identify_client(request=None, tenant=None) == "zeta"


# -- the typed stash -------------------------------------------------------------------------------

seen_key = StashKey[list[str]]("test.seen")


class StashUser:
    @hookimpl
    def scim_identify_client(self, request: ScimRequest) -> str | None:
        return "stasher" if request.headers.get("x-stash") == "1" else None

    @hookimpl
    def scim_normalize_resource(self, request: ScimRequest, client: Client) -> None:
        self.at_start = len(request.stash)
        request.stash[seen_key] = ["normalized"]

    @hookimpl
    def scim_shape_response(self, request: ScimRequest, body: dict[str, Any] | None) -> None:
        if body is not None and seen_key in request.stash:
            body["urn:example:stash"] = request.stash[seen_key] + ["shaped"]


async def test_request_stash_is_typed_and_empty_for_plugins(aiohttp_client: AppClient, tmp_path: Path) -> None:
    plugin = StashUser()
    scim = await _client(aiohttp_client, tmp_path, [("stasher", plugin)])
    status, doc, _ = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "s@example.com"},
                                     headers={"X-Stash": "1"})
    assert status == 201 and doc["urn:example:stash"] == ["normalized", "shaped"]
    assert plugin.at_start == 0  # the pipeline keeps nothing of its own in a plugin's stash


def test_stash_refuses_untyped_keys() -> None:
    stash = Stash()
    with pytest.raises(TypeError, match="StashKey"):
        stash["client"] = "okta"  # type: ignore[index]
    key = StashKey[int]()
    assert stash.get(key, 0) == 0 and stash.setdefault(key, 3) == 3 and stash[key] == 3 and key in stash
    del stash[key]
    assert len(stash) == 0


# -- plugin settings -------------------------------------------------------------------------------


def test_plugin_settings_come_from_their_environment_namespace() -> None:
    env = {"SCIM_GATEWAY_PLUGIN_MY_IDP__API_REGION": "eu", "SCIM_GATEWAY_PLUGIN_OKTA__STRICT": "1", "OTHER": "x"}
    assert plugin_settings_from_env(env) == {"my_idp": {"api_region": "eu"}, "okta": {"strict": "1"}}
    s = Settings.from_env(env)
    assert s.plugin_settings("my-idp") == {"api_region": "eu"} and s.plugin_settings("entra") == {}
    with pytest.raises(ValueError, match="__"):
        plugin_settings_from_env({"SCIM_GATEWAY_PLUGIN_OKTA_STRICT": "1"})


class Configured:
    """Validates its settings in scim_startup, as docs/writing_plugins.md shows."""

    def __init__(self) -> None:
        self.page_size = 0

    @hookimpl
    def scim_startup(self, gateway: Any) -> None:
        raw = gateway.plugin_settings("configured").get("page_size", "100")
        if not raw.isdigit():
            raise ValueError(f"SCIM_GATEWAY_PLUGIN_CONFIGURED__PAGE_SIZE must be a number, not {raw!r}")
        self.page_size = int(raw)


async def test_hook_scim_startup_validates_plugin_settings(aiohttp_client: AppClient, tmp_path: Path) -> None:
    plugin = Configured()
    await _client(aiohttp_client, tmp_path, [("configured", plugin)], plugin_config={"configured": {"page_size": "50"}})
    assert plugin.page_size == 50
    with pytest.raises(ValueError, match="must be a number"):
        await aiohttp_client(build_app(tmp_path / "b.db", plugins=[("configured", Configured())],
                                       plugin_config={"configured": {"page_size": "many"}}))
    with pytest.raises(ValueError, match="unknown plugin"):  # a misspelt plugin name is not silently ignored
        await aiohttp_client(build_app(tmp_path / "c.db", plugins=[("configured", Configured())],
                                       plugin_config={"configurd": {"page_size": "5"}}))


def test_installed_idps_lists_entry_points_without_building_a_plugin_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.plugin_manager as pm

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("installed_idps() must not build a plugin manager")

    monkeypatch.setattr(pm, "PluginHost", refuse)
    names = pm.installed_idps()
    assert {"okta", "entra", "generic"} <= set(names) and names[-3:] == ["entra", "generic", "okta"]
