"""Okta: the documented sequence replayed end to end, one replay per quirk, and hook unit tests.

Samples and their sources: ``samples/README.md``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest

import scim_gateway_okta as okta_plugin
from gateway.testing import ScimClient, load_sample, make_request, run_hook

HERE = Path(__file__).parent
OKTA_UA = {"User-Agent": "Okta SCIM Client 1.0.0"}
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CUSTOM = "urn:ietf:params:scim:schemas:custom:Space"


# -- the full documented sequence ------------------------------------------------------------


@pytest.mark.parametrize("idp", ["auto", "okta"], ids=["auto-by-user-agent", "idp-okta"])
async def test_okta_replay_full_sequence(scim: ScimClient, replay: Callable[..., Any], idp: str) -> None:
    """REF + SPEC in order: probes, pre-create lookup, create, 409, lookups, PUT, deactivate and
    reactivate, group push (create, add, rename, remove+add, replace, PUT, delete), import paging."""
    client = scim if idp == "auto" else await scim.other_tenant("Okta tenant", idp="okta")
    r = replay(HERE, None, client)
    await r.run_all()
    # import: both users, stable order, integer paging, deactivated users still listed
    _, page, _ = await client.get("/Users", params={"startIndex": "1", "count": "100"}, headers=OKTA_UA)
    assert [type(page[k]) for k in ("totalResults", "itemsPerPage", "startIndex")] == [int, int, int]
    ids = [u["id"] for u in page["Resources"]]
    assert set(ids) == {r.vars["user_id"], r.vars["user2_id"]}
    _, again, _ = await client.get("/Users", params={"startIndex": "1", "count": "100"}, headers=OKTA_UA)
    assert [u["id"] for u in again["Resources"]] == ids
    assert all("password" not in u for u in page["Resources"])


# -- one replay per quirk ----------------------------------------------------------------------


@pytest.fixture
async def otenant(scim: ScimClient, replay: Callable[..., Any]) -> Any:
    """A replayer on the ``scim`` tenant (idp ``auto``: Okta is recognised by its User-Agent) with step 05's user."""
    r = replay(HERE)
    await r.send("05")
    return r


async def test_okta_precreate_lookup_zero_then_one_case_insensitive(scim: ScimClient, replay: Callable[..., Any]) -> None:
    """REF "Determine if the User already exists"; SPEC "Username Case Sensitivity Check"."""
    r = replay(HERE)
    _, body = await r.send("04")
    assert body["totalResults"] == 0 and body["Resources"] == []
    await r.send("05")
    await r.send("08")
    _, body = await r.send("09")
    assert [u["id"] for u in body["Resources"]] == [r.vars["user_id"]]


async def test_okta_duplicate_create_is_409(otenant: Any) -> None:
    """REF 409 example; SPEC "Expect failure when recreating user with same values"."""
    status, body = await otenant.send("07")
    assert body["scimType"] == "uniqueness" and body["detail"]


async def test_okta_password_on_create_never_stored_nor_returned(otenant: Any) -> None:
    """REF "Create the User": Okta always sends a (placeholder) ``password``; RFC 7643 returned=never."""
    _, body = await otenant.send("10")
    assert "password" not in body
    db = otenant.scim.gateway.settings.database
    rows = sqlite3.connect(db).execute("SELECT * FROM users").fetchall()
    assert "1mz050nq" not in repr(rows)


async def test_okta_extension_namespaces_absent_from_schemas(otenant: Any) -> None:
    """REF + HELP: enterprise and custom-namespace objects whose URNs Okta does not list in ``schemas``."""
    _, body = await otenant.send("06")
    assert body[ENTERPRISE] == {"employeeNumber": "1234", "department": "Engineering"}
    assert body[CUSTOM] == {"custom1": "Custom Attribute"}
    assert ENTERPRISE in body["schemas"] and CUSTOM in body["schemas"]
    status, got, _ = await otenant.scim.get(f"/Users/{otenant.vars['user2_id']}")
    assert got[CUSTOM] == {"custom1": "Custom Attribute"}


async def test_okta_put_echoes_read_only_and_omits_attributes(otenant: Any) -> None:
    """REF "Update the User": a PUT echoing ``id``, ``groups``, ``meta`` and omitting ``password``,
    ``displayName``, ``externalId``: RFC 7644 §3.5.1 replace semantics, read-only fields ignored."""
    _, body = await otenant.send("11")
    assert body["name"] == {"givenName": "Another", "middleName": "Excited", "familyName": "User"}
    assert "password" not in body and body["meta"]["resourceType"] == "User"
    assert "displayName" not in body  # omitted from the PUT, so replaced by nothing


async def test_okta_put_deactivate_then_still_readable(otenant: Any) -> None:
    """REF "Delete Users": AIW apps deactivate with PUT; Okta never DELETEs users."""
    _, body = await otenant.send("14")
    assert body["active"] is False
    await otenant.send("15")


async def test_okta_no_path_deactivate_and_reactivate(otenant: Any) -> None:
    """REF "Update a specific User (PATCH)": ``replace`` with no path and ``{"active": false}``."""
    _, body = await otenant.send("12")
    assert body["active"] is False
    _, body = await otenant.send("13")
    assert body["active"] is True


async def test_okta_group_push(otenant: Any) -> None:
    """REF group push: create with ``members: []``, add without ``type``, rename with ``id`` in the
    value, remove by ``members[value eq ..]`` + add, replace all, AIW PUT, delete."""
    await otenant.send("06")
    await otenant.send("16")
    _, group = await otenant.send("17")
    assert group.get("members", []) == []
    await otenant.send("18")
    for step, expected in (("19", ["user_id"]), ("20", ["user_id"]), ("21", ["user2_id"]), ("22", ["user_id", "user2_id"]),
                           ("23", ["user_id"])):
        await otenant.send(step)
        _, got, _ = await otenant.scim.get(f"/Groups/{otenant.vars['group_id']}")
        assert sorted(m["value"] for m in got.get("members", [])) == sorted(otenant.vars[v] for v in expected), step
        assert got["displayName"] == "Test SCIMv2"
    await otenant.send("24")
    await otenant.send("25")


async def test_okta_probes_and_unknown_id(scim: ScimClient, replay: Callable[..., Any]) -> None:
    """SPEC "Test Users endpoint", REF "Retrieve Groups", SPEC "Test invalid User by ID"."""
    r = replay(HERE)
    for step in ("01", "02"):
        _, body = await r.send(step)
        assert all(isinstance(body[k], int) for k in ("totalResults", "startIndex"))
    _, body = await r.send("03")
    assert body["detail"]


# -- the same payloads to a generic tenant: the strict RFC answer -----------------------------


async def test_generic_rejects_extension_urn_absent_from_schemas(scim: ScimClient, replay: Callable[..., Any]) -> None:
    """RFC 7643 §3: an extension object whose URN is not in ``schemas`` -> 400 invalidValue naming it."""
    client = await scim.other_tenant("Generic", idp="generic")
    status, body = await replay(HERE, None, client).send("06", check=False)
    assert status == 400 and body["scimType"] == "invalidValue" and ENTERPRISE in body["detail"]


async def test_generic_accepts_okta_rfc_traffic(scim: ScimClient, replay: Callable[..., Any]) -> None:
    """Everything else Okta sends is plain RFC 7644: a generic tenant answers it the same way."""
    client = await scim.other_tenant("Generic", idp="generic")
    r = replay(HERE, None, client)
    for step in ("04", "05", "07", "09", "11", "12", "13", "17", "19", "20", "24", "25"):
        await r.send(step)


# -- hook unit tests (run_hook: no server) ------------------------------------------------------


def test_hook_scim_identify_client_okta_user_agents() -> None:
    for ua in ("Okta SCIM Client 1.0.0", "OKTA SCIM Integration"):
        assert run_hook(okta_plugin, "scim_identify_client", request=make_request(headers={"User-Agent": ua})) == "okta"
    for ua in ("", "Microsoft Azure AD SCIM provisioning", "python-requests/2.31"):
        assert run_hook(okta_plugin, "scim_identify_client", request=make_request(headers={"User-Agent": ua})) is None


def test_hook_scim_normalize_resource_okta_lists_extensions_and_drops_groups() -> None:
    payload = load_sample(HERE, "06_create_user_with_extension_namespace")["request"]["body"]
    run_hook(okta_plugin, "scim_normalize_resource", request=make_request("POST", "/Users"), payload=payload)
    assert payload["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, CUSTOM]
    assert "groups" not in payload and payload["password"] == "1mz050nq"  # the core drops the password


def test_hook_scim_normalize_patch_okta_drops_echoed_id() -> None:
    ops = [{"op": "replace", "value": {"id": "g1", "displayName": "Test SCIMv2"}}]
    run_hook(okta_plugin, "scim_normalize_patch", request=make_request("PATCH", "/Groups/g1"), operations=ops)
    assert ops == [{"op": "replace", "value": {"displayName": "Test SCIMv2"}}]
    ops = [{"op": "replace", "value": {"id": "other"}}]
    run_hook(okta_plugin, "scim_normalize_patch", request=make_request("PATCH", "/Groups/g1"), operations=ops)
    assert ops[0]["value"] == {"id": "other"}  # a different id is left for the core to refuse


def test_hook_scim_normalize_patch_okta_leaves_deactivate_alone() -> None:
    ops = load_sample(HERE, "12_patch_deactivate")["request"]["body"]["Operations"]
    run_hook(okta_plugin, "scim_normalize_patch", request=make_request("PATCH", "/Users/u1"), operations=ops)
    assert ops == [{"op": "replace", "value": {"active": False}}]


def test_hook_scim_selftest_sequence_okta_ships_its_sequence() -> None:
    from gateway.selftest.sequence import parse

    seq = parse(run_hook(okta_plugin, "scim_selftest_sequence", idp="okta"))
    assert seq.idp == "okta" and seq.steps[0].stop_on_failure
    assert run_hook(okta_plugin, "scim_selftest_sequence", idp="entra") is None
