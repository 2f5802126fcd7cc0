"""Entra ID: the documented sequence replayed end to end, one replay per quirk, and hook unit tests.

Samples and their sources: ``samples/README.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

import scim_gateway_entra as entra_plugin
from gateway.testing import ScimClient, load_sample, make_request, run_hook

HERE = Path(__file__).parent
ENTRA_UA = {"User-Agent": "Microsoft Azure AD SCIM provisioning"}
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"



async def entra_tenant(scim: ScimClient, idp: str) -> ScimClient:
    return scim if idp == "auto" else await scim.other_tenant("Entra tenant", idp=idp)


# -- the full documented sequence ------------------------------------------------------------


@pytest.mark.parametrize(("idp", "headers"), [("entra", {}), ("auto", ENTRA_UA)], ids=["idp-entra", "auto-by-user-agent"])
async def test_entra_replay_full_sequence(scim: ScimClient, replay: Callable[..., Any], idp: str, headers: dict[str, str]) -> None:
    """TUT's sequence (test connection, match, create, update, disable, groups, members, delete) plus
    the KI/CA/REFCODE quirk steps, in file order, with ids captured as the samples say."""
    r = replay(HERE, headers, await entra_tenant(scim, idp))
    await r.run_all()
    # what Entra relies on beyond status codes
    status, user, _ = await r.scim.get(f"/Users/{r.vars['user2_id']}", headers=headers)
    assert status == 200 and user["active"] is True and user[ENTERPRISE]["manager"]["value"] == "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    status, group, _ = await r.scim.get(f"/Groups/{r.vars['group2_id']}")
    assert status == 200 and group.get("members", []) == []


async def test_entra_replay_test_connection_is_200_empty(scim: ScimClient, replay: Callable[..., Any]) -> None:
    """TUT "Test Connection": a filter on a random GUID must be 200 with zero results, never 404."""
    r = replay(HERE)
    for step in ("01", "02"):
        status, body = await r.send(step)
        assert body["totalResults"] == 0 and body["Resources"] == []


# -- one replay per quirk ----------------------------------------------------------------------


@pytest.fixture
async def etenant(scim: ScimClient, replay: Callable[..., Any]) -> Any:
    """A replayer on an ``entra`` tenant with a user from step 23 (``{user2_id}``) and a group."""
    client = await scim.other_tenant("Entra", idp="entra")
    r = replay(HERE, None, client)
    await r.send("23")
    return r


async def test_entra_capitalised_ops(etenant: Any) -> None:
    """KI legacy job: ``Add``/``Replace`` (the core treats ``op`` case-insensitively for every client)."""
    await etenant.send("31")
    status, body = await etenant.send("33")
    assert body["displayName"] == "Pvlo" and body[ENTERPRISE]["employeeNumber"] == "Eqpj"


async def test_entra_string_booleans_active(etenant: Any) -> None:
    """KI legacy job: ``"False"``/``"True"`` strings for ``active``; the flag form sends booleans."""
    _, body = await etenant.send("28")
    assert body["active"] is False
    _, body = await etenant.send("30")
    assert body["active"] is True
    _, body = await etenant.send("29")
    assert body["active"] is False


async def test_entra_no_path_replace_dotted_and_urn_keys(etenant: Any) -> None:
    """KI flag aadOptscim062020: no-path replace with ``name.givenName`` and URN-qualified keys."""
    _, body = await etenant.send("34")
    assert body["name"]["givenName"] == "Kkom" and body["name"]["familyName"] == "Unua"
    assert body[ENTERPRISE]["employeeNumber"] == "Aklq"
    assert "name.givenName" not in body and ENTERPRISE + ":employeeNumber" not in body


async def test_entra_manager_bare_string_and_array(etenant: Any) -> None:
    """TUT Example 5 (``[{"$ref", "value"}]`` on unqualified ``manager``) and the bare-id form."""
    for step in ("26", "35", "36"):
        _, body = await etenant.send(step)
        assert body[ENTERPRISE]["manager"]["value"] == "00aa00aa-bb11-cc22-dd33-44ee44ee44ee", step


async def test_entra_query_reference_attribute_manager(etenant: Any) -> None:
    """TUT Example 4: Entra checks the current manager with ``id eq .. and manager eq ..``."""
    await etenant.send("26")
    status, body = await etenant.send("27")
    assert status == 200 and body["totalResults"] == 1


async def test_entra_mixed_case_attribute_names(etenant: Any) -> None:
    """RFC 7643 §2.1 (core): ``UserName``, ``name.FamilyName``, ``emails[..].Value``, ``.Formatted``."""
    _, body = await etenant.send("38")
    assert body["userName"] == "jyoung2@testuser.com" and body["name"]["familyName"] == "Young-Smith"
    assert {"type": "work", "value": "jyoung2@contoso.com", "primary": True} in body["emails"]
    _, body = await etenant.send("37")
    assert any(a.get("type") == "other" and a.get("formatted") == "Building 42" for a in body["addresses"])
    _, body = await etenant.send("39")
    assert body["emails"][0]["primary"] is True and "Primary" not in body["emails"][0]


async def test_entra_enterprise_nulls_and_capitalised_extension_attribute(etenant: Any) -> None:
    """REFCODE user_enterprise.json: nulls, ``Department``, client ``meta`` timestamps ignored."""
    _, body = await etenant.send("40")
    assert body[ENTERPRISE]["department"] == "some department"
    assert body["meta"]["created"] != "2019-09-18T18:15:26.5788954+00:00"


async def test_entra_sample_code_bad_urn_and_top_level_nulls(etenant: Any) -> None:
    """TUT Example 2 (step 23, sent by the fixture): misspelt enterprise URN, JSON nulls."""
    status, body, _ = await etenant.scim.get(f"/Users/{etenant.vars['user2_id']}")
    assert status == 200 and "urn:ietf:params:scim:schemas:extension:enterprise:2.0User" not in body["schemas"]
    assert "department" not in body and "manager" not in body


async def test_entra_unquoted_filter_value(etenant: Any) -> None:
    """TUT Example 1: ``filter=externalId eq jyoung``."""
    _, body = await etenant.send("24")
    assert [u["id"] for u in body["Resources"]] == [etenant.vars["user2_id"]]


async def test_entra_value_path_filter_on_work_email(etenant: Any) -> None:
    await etenant.send("25")


async def test_entra_single_app_role_filtered_path(etenant: Any) -> None:
    """CA SingleAppRoleAssignment: ``roles[primary eq "True"].value`` with Replace and Add."""
    await etenant.send("41")
    _, body = await etenant.send("42")
    assert body["roles"] == [{"primary": True, "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}]
    _, body = await etenant.send("43")
    assert len(body["roles"]) == 1


async def test_entra_single_app_role_json_encoded_value(etenant: Any) -> None:
    """CA: the PATCH form of a role is a JSON-encoded ``{"id", "value", "displayName"}``."""
    await etenant.send("41")
    _, body = await etenant.send("44")
    assert {"value": "25", "display": "Role1234"} in body["roles"]
    assert not any(r["value"].startswith("{") for r in body["roles"])


async def test_entra_app_role_assignments_complex(etenant: Any) -> None:
    """CA AppRoleAssignmentsComplex: POST with ``displayName``, then add-only JSON-encoded PATCH."""
    _, created = await etenant.send("45")
    assert {r["value"]: r.get("display") for r in created["roles"]} == {"Admin": "Admin", "User": "User"}
    _, body = await etenant.send("46")
    assert sorted(r["value"] for r in body["roles"]) == ["Admin", "User"]  # no duplicates


async def test_entra_assertive_app_roles_replace(etenant: Any) -> None:
    """CA AssertiveAppRoleAssignmentsComplex: ``replace`` of the whole ``roles`` array."""
    await etenant.send("47")
    _, body = await etenant.send("48")
    assert sorted(r["value"] for r in body["roles"]) == ["Test", "User"]


async def test_entra_multi_valued_phone_numbers(etenant: Any) -> None:
    await etenant.send("47")
    _, body = await etenant.send("49")
    assert {p["type"]: p["value"] for p in body["phoneNumbers"]} == {"work": "555-555-5555", "mobile": "555-555-5556", "fax": "555-555-5557"}


async def test_entra_group_schema_uri_and_excluded_members(etenant: Any) -> None:
    """TUT: Microsoft ADSCIM group URI on create; ``excludedAttributes=members`` on reads."""
    etenant.vars["user_id"] = etenant.vars["user2_id"]
    _, body = await etenant.send("12")
    assert entra_schema_absent(body)
    await etenant.send("16")
    _, body = await etenant.send("13")
    assert "members" not in body
    _, body = await etenant.send("14")
    assert all("members" not in g for g in body["Resources"])


def entra_schema_absent(body: dict[str, Any]) -> bool:
    return entra_plugin.MS_GROUP_SCHEMA not in body["schemas"]


async def test_entra_members_ref_null_and_remove_by_value_array(etenant: Any) -> None:
    """TUT "Add/Remove Members" and KI: ``"$ref": null``; Remove ``members`` with a value array
    removes only the listed members; REFCODE's extra ``"name": "addMember"`` op key."""
    await etenant.send("39")
    await etenant.send("40")
    await etenant.send("50")
    for step in ("51", "52"):
        await etenant.send(step)
    _, group, _ = await etenant.scim.get(f"/Groups/{etenant.vars['group2_id']}")
    assert sorted(m["value"] for m in group["members"]) == sorted([etenant.vars["user3_id"], etenant.vars["user4_id"]])
    await etenant.send("53")
    _, group, _ = await etenant.scim.get(f"/Groups/{etenant.vars['group2_id']}")
    assert [m["value"] for m in group["members"]] == [etenant.vars["user4_id"]]
    await etenant.send("54")
    await etenant.send("55")
    _, group, _ = await etenant.scim.get(f"/Groups/{etenant.vars['group2_id']}")
    assert group.get("members", []) == []


# -- the same payloads to a generic tenant: the strict RFC answer -----------------------------


@pytest.fixture
async def generic(scim: ScimClient, replay: Callable[..., Any]) -> Any:
    client = await scim.other_tenant("Generic", idp="generic")
    r = replay(HERE, None, client)
    await r.send("23", check=False)  # creates {user2_id}; generic tolerates its nulls (RFC 7643 §2.5)
    return r


async def test_generic_rejects_string_boolean(generic: Any) -> None:
    """RFC 7643 §2.3.2: a boolean is JSON ``true``/``false``; ``"False"`` is refused, naming the attribute."""
    status, body = await generic.send("28", check=False)
    assert status == 400 and body["scimType"] == "invalidValue"
    assert "'active'" in body["detail"] and "JSON boolean" in body["detail"]
    _, user, _ = await generic.scim.get(f"/Users/{generic.vars['user2_id']}")
    assert user.get("active", True) is True


async def test_generic_accepts_unquoted_filter_value(generic: Any) -> None:
    """``externalId eq jyoung`` works on a generic tenant too. Issue 3 places this form in the
    engine because real clients beyond Entra send it; it is unambiguous (an unquoted token that is
    not a JSON literal or number can only be a string), so refusing it would help nobody."""
    status, body = await generic.send("24", check=False)
    assert status == 200 and [u["id"] for u in body["Resources"]] == [generic.vars["user2_id"]]


async def test_generic_rejects_bare_string_manager(generic: Any) -> None:
    """RFC 7643 §4.3: ``manager`` is complex; the error says to send ``{"value": "<id>"}``."""
    status, body = await generic.send("35", check=False)
    assert status == 400 and body["scimType"] == "invalidValue"
    assert "manager" in body["detail"] and '{"value": "<manager id>"}' in body["detail"]
    status, body = await generic.send("36", check=False)  # the one-element array form
    assert status == 400 and body["scimType"] == "invalidValue" and "manager" in body["detail"]


async def test_generic_rejects_remove_members_with_value_array(generic: Any) -> None:
    """RFC 7644 §3.5.2.2: remove selects with a filter in ``path``; a value array is refused with
    the filter to use, and no member is removed (never a silent remove-all)."""
    await generic.send("50", check=False)
    generic.vars["user3_id"] = generic.vars["user2_id"]
    await generic.send("51", check=False)
    status, body = await generic.send("53", check=False)
    assert status == 400 and body["scimType"] in ("invalidSyntax", "invalidValue")
    assert 'members[value eq \\"<id>\\"]' in body["detail"]
    _, group, _ = await generic.scim.get(f"/Groups/{generic.vars['group2_id']}")
    assert [m["value"] for m in group["members"]] == [generic.vars["user2_id"]]


async def test_generic_accepts_no_path_dotted_keys(generic: Any) -> None:
    """A no-path replace whose keys are ``name.givenName`` and URN-qualified paths works on a
    generic tenant too. Issue 3 places these forms in the engine because real clients beyond Entra
    send them; they are unambiguous (each key can only name that one attribute)."""
    status, body = await generic.send("34", check=False)
    assert status == 200 and body["name"]["givenName"] == "Kkom" and body["displayName"] == "Bjfe"
    assert body[ENTERPRISE]["employeeNumber"] == "Aklq" and "name.givenName" not in body


async def test_generic_tenant_leaves_json_encoded_role_verbatim(generic: Any) -> None:
    """A JSON string is a valid ``roles.value`` (RFC 7643 §4.1.2): generic stores it as sent."""
    await generic.send("41", check=False)
    generic.vars["user5_id"] = generic.vars.get("user5_id", "")
    status, body = await generic.send("44", check=False)
    assert status == 200 and any(r["value"].startswith("{") for r in body["roles"])


# -- hook unit tests (run_hook: no server) ------------------------------------------------------


def _ops(sample: str) -> list[dict[str, Any]]:
    return load_sample(HERE, sample)["request"]["body"]["Operations"]


def test_hook_scim_identify_client_entra_signals() -> None:
    assert run_hook(entra_plugin, "scim_identify_client", request=make_request(headers=ENTRA_UA)) == "entra"
    assert run_hook(entra_plugin, "scim_identify_client", request=make_request(query={"aadOptscim062020": ""})) == "entra"
    body = load_sample(HERE, "12_create_group")["request"]["body"]
    assert run_hook(entra_plugin, "scim_identify_client", request=make_request("POST", "/Groups", body=body)) == "entra"
    patch = load_sample(HERE, "28_legacy_patch_disable_active_string")["request"]["body"]
    assert run_hook(entra_plugin, "scim_identify_client", request=make_request("PATCH", "/Users/1", body=patch)) == "entra"


def test_hook_scim_identify_client_entra_ignores_others() -> None:
    assert run_hook(entra_plugin, "scim_identify_client", request=make_request(headers={"User-Agent": "Okta SCIM Client 1.0.0"})) is None
    assert run_hook(entra_plugin, "scim_identify_client", request=make_request()) is None
    patch = load_sample(HERE, "29_flag_patch_disable_active_boolean")["request"]["body"]
    assert run_hook(entra_plugin, "scim_identify_client", request=make_request("PATCH", "/Users/1", body=patch)) is None


def test_hook_scim_normalize_query_quotes_unquoted_and_drops_flag() -> None:
    query = {"filter": "externalId eq jyoung", "aadOptscim062020": ""}
    run_hook(entra_plugin, "scim_normalize_query", query=query)
    assert query == {"filter": 'externalId eq "jyoung"'}
    query = {"filter": 'userName eq "a b" and active eq true and x.y gt 5 and displayName eq Joy'}
    run_hook(entra_plugin, "scim_normalize_query", query=query)
    assert query["filter"] == 'userName eq "a b" and active eq true and x.y gt 5 and displayName eq "Joy"'


def test_hook_scim_normalize_patch_string_booleans_anywhere() -> None:
    ops = [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": "emails", "value": [{"value": "a@b.c", "primary": "True"}]},
        {"op": "Replace", "path": 'roles[primary eq "True"].value', "value": "Admin"},
        {"op": "Replace", "path": "nickName", "value": "True"},
    ]
    run_hook(entra_plugin, "scim_normalize_patch", operations=ops)
    assert ops[0]["value"] is False and ops[1]["value"][0]["primary"] is True
    assert ops[2]["path"] == "roles[primary eq true].value"
    assert ops[3]["value"] == "True"  # only boolean attributes are converted


def test_hook_scim_normalize_patch_splits_no_path_dotted_keys() -> None:
    ops = _ops("34_flag_patch_replace_no_path_dotted_keys")
    run_hook(entra_plugin, "scim_normalize_patch", operations=ops)
    assert ops[1] == {"op": "replace", "value": {"displayName": "Bjfe"}}
    assert {"op": "replace", "path": "name.givenName", "value": "Kkom"} in ops
    assert {"op": "replace", "path": ENTERPRISE + ":employeeNumber", "value": "Aklq"} in ops


def test_hook_scim_normalize_patch_remove_members_value_array() -> None:
    ops = [{"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "u1"}, {"value": "u2"}]}]
    run_hook(entra_plugin, "scim_normalize_patch", operations=ops)
    assert ops == [{"op": "remove", "path": 'members[value eq "u1"]'}, {"op": "remove", "path": 'members[value eq "u2"]'}]


def test_hook_scim_normalize_patch_members_ref_null_and_named_op() -> None:
    ops = [{"name": "addMember", "op": "add", "path": "members", "value": [{"displayName": "Bob", "value": "u1", "$ref": None}]}]
    run_hook(entra_plugin, "scim_normalize_patch", operations=ops)
    assert ops == [{"op": "add", "path": "members", "value": [{"display": "Bob", "value": "u1"}]}]


def test_hook_scim_normalize_patch_manager_shapes() -> None:
    for sample in ("26_patch_manager_add_ref_value_array", "35_patch_enterprise_manager_bare_string", "36_patch_enterprise_manager_value_array"):
        ops = _ops(sample)
        run_hook(entra_plugin, "scim_normalize_patch", operations=ops)
        assert ops[0]["value"]["value"] == "00aa00aa-bb11-cc22-dd33-44ee44ee44ee", sample


def test_hook_scim_normalize_patch_json_encoded_roles() -> None:
    ops = _ops("46_patch_app_role_assignments_complex_json_encoded")
    run_hook(entra_plugin, "scim_normalize_patch", operations=ops)
    assert {"op": "add", "path": 'roles[value eq "Admin"].display', "value": "Admin"} in ops
    assert {"op": "add", "path": 'roles[value eq "User"].display', "value": "User"} in ops


def test_hook_scim_normalize_resource_create_group_schema() -> None:
    payload = load_sample(HERE, "12_create_group")["request"]["body"]
    run_hook(entra_plugin, "scim_normalize_resource", request=make_request("POST", "/Groups"), payload=payload)
    assert payload["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Group"]


def test_hook_scim_normalize_resource_sample_code_user() -> None:
    payload = load_sample(HERE, "23_create_user_sample_code_nulls_and_bad_urn")["request"]["body"]
    payload["manager"] = "m-1"
    payload["active"] = "True"
    run_hook(entra_plugin, "scim_normalize_resource", request=make_request("POST", "/Users"), payload=payload)
    assert payload["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]
    assert payload[ENTERPRISE] == {"manager": {"value": "m-1"}} and "manager" not in payload
    assert payload["active"] is True


def test_hook_scim_normalize_resource_lists_custom_extension_urn() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User"
    payload = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", urn: {"costCenter": "1"}}
    run_hook(entra_plugin, "scim_normalize_resource", request=make_request("POST", "/Users"), payload=payload)
    assert urn in payload["schemas"]


async def test_entra_custom_extension_urn_absent_from_schemas(scim: ScimClient) -> None:
    """CA: custom extension attributes arrive under a URN Entra does not list in ``schemas``."""
    client = await scim.other_tenant("Entra", idp="entra")
    urn = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User"
    status, body, _ = await client.post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                   "userName": "ext@contoso.com", urn: {"costCenter": "42"}})
    assert status == 201 and body[urn] == {"costCenter": "42"}


CUSTOM = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"


def test_hook_scim_normalize_resource_lists_urn_of_flat_custom_attribute_keys() -> None:
    """CA: ``<URN>:<attribute>`` keys arrive without their URN in ``schemas``; listed URNs are left alone."""
    payload = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE], "userName": "a",
               f"{CUSTOM}:CustomAttribute": "1", f"{CUSTOM}:Other": "2", f"{ENTERPRISE}:costCenter": "3",
               "urn:bad": "x"}
    run_hook(entra_plugin, "scim_normalize_resource", request=make_request("POST", "/Users"), payload=payload)
    assert payload["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, CUSTOM]


async def test_entra_replay_custom_extension_attribute_undeclared_and_declared(
    scim: ScimClient, replay: Callable[..., Any]
) -> None:
    """CA's custom extension attribute form (steps 56, 57): stored as sent while the tenant has no schema for
    it; once the tenant declares the extension, typed, published, filterable and sortable."""
    from gateway.identity import extensions

    plain = await scim.other_tenant("Entra plain", idp="entra")
    r = replay(HERE, None, plain)
    await r.send("56")
    await r.send("57")
    declared = await scim.other_tenant("Entra declared", idp="entra")
    gw = declared.gateway
    schema = {"attributes": [{"name": "CustomAttribute", "type": "string"}]}
    status, _ = await extensions.put_schema(gw.store, declared.tenant.id, CUSTOM, json.dumps(schema), gw.settings.scim_url)
    assert status == 201
    r = replay(HERE, None, declared)
    await r.send("56")
    await r.send("57")
    status, page, _ = await declared.get("/Users", params={"filter": f'{CUSTOM}:CustomAttribute eq "701985"',
                                                           "sortBy": f"{CUSTOM}:CustomAttribute"})
    assert status == 200 and [u["id"] for u in page["Resources"]] == [r.vars["user8_id"]]
    status, doc, _ = await declared.get(f"/Schemas/{CUSTOM}")
    assert status == 200 and doc["attributes"][0]["name"] == "CustomAttribute"
    # a value of the wrong type is refused with the attribute named, where the undeclared tenant stored it
    body = r.load("56")["request"]["body"]
    body.update(userName="typed@contoso.onmicrosoft.com", externalId="typed", **{f"{CUSTOM}:CustomAttribute": 701984})
    status, err, _ = await declared.post("/Users", body)
    assert status == 400 and f"'{CUSTOM}:CustomAttribute' must be a string" in err["detail"]


def test_hook_scim_normalize_patch_string_booleans_in_no_path_keys() -> None:
    """KI legacy job: the strict core refuses "True"/"False", so every key form is converted here."""
    ops = [{"op": "Replace", "value": {
        "active": "False",
        "urn:ietf:params:scim:schemas:core:2.0:User:active": "True",
        'emails[type eq "work"].primary': "True",
        'roles[primary eq "True"].value': "Admin",
        "nickName": "False",
    }}]
    run_hook(entra_plugin, "scim_normalize_patch", operations=ops)
    assert ops[0] == {"op": "replace", "value": {"active": False, "nickName": "False"}}
    assert {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": True} in ops
    assert {"op": "replace", "path": 'emails[type eq "work"].primary', "value": True} in ops
    assert {"op": "replace", "path": "roles[primary eq true].value", "value": "Admin"} in ops


def test_hook_scim_normalize_patch_manager_inside_enterprise_object() -> None:
    """TUT Example 5's shapes also arrive inside the enterprise object (no path, or the URN as path)."""
    for op in ({"op": "Replace", "value": {ENTERPRISE: {"manager": "m-1"}}},
               {"op": "Add", "path": ENTERPRISE, "value": {"manager": [{"$ref": None, "value": "m-1"}]}},
               {"op": "Add", "value": {ENTERPRISE + ":manager": ["m-1"]}}):
        ops = [op]
        run_hook(entra_plugin, "scim_normalize_patch", operations=ops)
        value = ops[0]["value"]
        assert (value.get(ENTERPRISE, value) if "path" not in ops[0] else value) in (
            {"manager": {"value": "m-1"}}, {ENTERPRISE + ":manager": {"value": "m-1"}}), op


def test_hook_scim_normalize_resource_string_booleans_and_qualified_manager() -> None:
    payload = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE], "userName": "a",
               "active": "False", "emails": [{"value": "a@b.c", "primary": "True"}],
               ENTERPRISE + ":manager": "m-1"}
    run_hook(entra_plugin, "scim_normalize_resource", request=make_request("POST", "/Users"), payload=payload)
    assert payload["active"] is False and payload["emails"][0]["primary"] is True
    assert payload[ENTERPRISE + ":manager"] == {"value": "m-1"}


async def test_entra_string_booleans_and_manager_everywhere(etenant: Any) -> None:
    """End to end on a strict core: every place Entra sends "True"/"False" or a bare manager id."""
    uid = etenant.vars["user2_id"]
    status, body, _ = await etenant.scim.patch(f"/Users/{uid}", [
        {"op": "Replace", "value": {"active": "False", ENTERPRISE: {"manager": "m-1"}}},
        {"op": "Add", "path": "emails", "value": [{"value": "x@contoso.com", "type": "other", "primary": "True"}]},
        {"op": "Add", "path": "roles", "value": [{"value": "Admin", "primary": "True"}]},
        {"op": "Replace", "path": 'roles[primary eq "True"].value', "value": "Owner"},
    ])
    assert status == 200, body
    assert body["active"] is False and body[ENTERPRISE]["manager"]["value"] == "m-1"
    assert {"value": "x@contoso.com", "type": "other", "primary": True} in body["emails"]
    assert [(r["value"], r.get("primary")) for r in body["roles"]] == [("Owner", True)]


def test_hook_scim_selftest_sequence_entra_ships_its_sequence() -> None:
    from gateway.selftest.sequence import parse

    seq = parse(run_hook(entra_plugin, "scim_selftest_sequence", idp="entra"))
    assert seq.idp == "entra" and seq.steps[0].stop_on_failure
    assert run_hook(entra_plugin, "scim_selftest_sequence", idp="okta") is None
