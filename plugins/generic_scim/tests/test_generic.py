"""The generic plugin: answers identification last and adds no leniency (strict RFC 7644)."""

from __future__ import annotations

import scim_gateway_generic as generic_plugin
from gateway.testing import USER_SCHEMA, ScimClient, make_request, run_hook


def test_hook_scim_identify_client_generic_claims_anything() -> None:
    assert run_hook(generic_plugin, "scim_identify_client", request=make_request()) == "generic"


def test_generic_implements_no_normaliser() -> None:
    assert not [n for n in dir(generic_plugin) if n.startswith("scim_normalize")]


async def test_generic_errors_tell_the_developer_what_to_fix(scim: ScimClient) -> None:
    client = await scim.other_tenant("Generic", idp="generic")
    status, err, _ = await client.post("/Users", {"schemas": [USER_SCHEMA], "userName": "a@b.c", "active": "yes"})
    assert status == 400 and err["scimType"] == "invalidValue" and "active" in err["detail"] and "boolean" in err["detail"]
    status, err, _ = await client.get("/Users", params={"filter": 'userName eq "a" and'})
    assert status == 400 and err["scimType"] == "invalidFilter" and err["detail"]


async def test_generic_answers_unrecognised_requests_on_auto_tenants(scim: ScimClient) -> None:
    status, body, _ = await scim.get("/Users", params={"filter": 'userName eq "7d5b8d7a-3f0e-4c53-9d8a-2b9e6a1f4c11"'})
    assert status == 200 and body["totalResults"] == 0 and body["Resources"] == []


def test_hook_scim_selftest_sequence_generic_ships_its_sequence() -> None:
    from gateway.selftest.sequence import parse

    seq = parse(run_hook(generic_plugin, "scim_selftest_sequence", idp="generic"))
    assert seq.idp == "generic" and seq.steps[0].stop_on_failure
    assert run_hook(generic_plugin, "scim_selftest_sequence", idp="okta") is None
