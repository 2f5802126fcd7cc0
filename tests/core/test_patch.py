"""apply_patch: RFC 7644 §3.5.2 over stored data documents."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.core.errors import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    ScimError,
)
from gateway.core.filter import parse_filter
from gateway.core.patch import MemberChanges, PatchOutcome, apply_patch
from gateway.core.resource import prepare_write
from gateway.core.schema import ENTERPRISE_USER_SCHEMA as ENT, GROUP_SCHEMA, USER_SCHEMA, group_type, user_type

SAMPLES = Path(__file__).parent / "samples"
RFC = json.loads((SAMPLES / "rfc7644_3_5_2_examples.json").read_text())
CUSTOM = "urn:ietf:params:scim:schemas:extension:mycompany:2.0:User"
RID = "2819c223-7f76-453a-919d-413861904646"


def stored_user() -> dict[str, Any]:
    body = json.loads((SAMPLES / "rfc7643_8_2_full_user.json").read_text())
    return prepare_write(body, user_type()).data


def stored_group() -> dict[str, Any]:
    return {"displayName": "Tour Guides", "schemas": [GROUP_SCHEMA]}


def patch_user(ops: list[dict[str, Any]], data: dict[str, Any] | None = None) -> PatchOutcome:
    return apply_patch(stored_user() if data is None else data, ops, user_type(), resource_id=RID)


def patch_group(ops: list[dict[str, Any]]) -> MemberChanges:
    out = apply_patch(stored_group(), ops, group_type(), resource_id="g1")
    assert out.data == stored_group() and out.changed is False
    assert out.members is not None
    return out.members


def emails(out: PatchOutcome) -> list[dict[str, Any]]:
    return out.data["emails"]  # type: ignore[no-any-return]


# --- RFC 7644 §3.5.2.1 add -----------------------------------------------------------------


def test_rfc_add_member() -> None:
    mc = patch_group(RFC["add_member"])
    assert mc.add == RFC["add_member"][0]["value"]
    assert (mc.remove_ids, mc.remove_filter, mc.replace_all, mc.remove_all) == ([], [], None, False)


def test_rfc_add_without_path() -> None:
    data = {"userName": "bjensen", "emails": [{"value": "bjensen@example.com", "type": "work"}], "schemas": [USER_SCHEMA]}
    out = patch_user(RFC["add_no_path"], data)
    assert emails(out) == [{"value": "bjensen@example.com", "type": "work"}, {"value": "babs@jensen.org", "type": "home"}]
    assert out.data["nickName"] == "Babs"  # "nickname" in the RFC example: canonicalised
    assert out.changed is True


def test_add_identical_value_changes_nothing() -> None:
    # §3.5.2.1: "If the target location already contains the value specified, no changes SHOULD be made"
    out = patch_user([{"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "home"}]}])
    assert emails(out) == stored_user()["emails"]
    assert out.changed is False


def test_add_to_single_valued_replaces_and_to_complex_merges() -> None:
    out = patch_user([
        {"op": "add", "path": "title", "value": "Guide"},
        {"op": "add", "path": "name", "value": {"givenName": "Babs"}},
    ])
    assert out.data["title"] == "Guide"
    assert out.data["name"]["givenName"] == "Babs" and out.data["name"]["familyName"] == "Jensen"


def test_add_single_object_to_multi_valued_is_accepted() -> None:
    out = patch_user([{"op": "add", "path": "ims", "value": {"value": "x", "type": "xmpp"}}])
    assert out.data["ims"][-1] == {"value": "x", "type": "xmpp"}


# --- RFC 7644 §3.5.2.2 remove ----------------------------------------------------------------


def test_rfc_remove_single_member() -> None:
    mc = patch_group(RFC["remove_single_member"])
    assert mc.remove_ids == ["2819c223-7f76-...413861904646"]
    assert mc.remove_filter == [] and not mc.remove_all


def test_rfc_remove_all_members() -> None:
    mc = patch_group(RFC["remove_all_members"])
    assert mc.remove_all is True and mc.add == [] and mc.replace_all is None


def test_rfc_remove_multiple_members() -> None:
    mc = patch_group(RFC["remove_multiple_members"])
    assert mc.remove_ids == ["2819c223...919d-413861904646", "902c246b...6245-4190-8e05-00816be7344a"]


def test_rfc_remove_all_then_add() -> None:
    mc = patch_group(RFC["remove_all_then_add"])
    assert mc.remove_all is True
    assert [m["value"] for m in mc.add] == ["2819c223-7f76-453a-919d-413861904646", "08e1d05d-121c-4561-8b96-473d93df9210"]


def test_rfc_remove_filtered_emails() -> None:
    out = patch_user(RFC["remove_filtered_emails"])
    assert emails(out) == [{"value": "babs@jensen.org", "type": "home"}]


def test_remove_last_matching_value_unassigns_the_attribute() -> None:
    out = patch_user([{"op": "remove", "path": "ims[type eq \"aim\"]"}])
    assert "ims" not in out.data


def test_remove_whole_attribute_and_sub_attribute() -> None:
    out = patch_user([
        {"op": "remove", "path": "phoneNumbers"},
        {"op": "remove", "path": "name.middleName"},
        {"op": "remove", "path": "emails.type"},
    ])
    assert "phoneNumbers" not in out.data
    assert "middleName" not in out.data["name"] and out.data["name"]["givenName"] == "Barbara"
    assert all("type" not in e for e in emails(out))


def test_remove_sub_attribute_of_matching_values() -> None:
    out = patch_user([{"op": "remove", "path": "addresses[type eq \"work\"].primary"}])
    assert "primary" not in out.data["addresses"][0]
    assert out.data["addresses"][1] == stored_user()["addresses"][1]


def test_remove_unassigned_attribute_is_a_noop() -> None:
    out = patch_user([{"op": "remove", "path": "entitlements"}])
    assert out.changed is False and out.data == stored_user()


@pytest.mark.parametrize("op", [{"op": "remove"}, {"op": "remove", "path": ""}, {"op": "remove", "value": {"title": "x"}}])
def test_remove_without_path_is_no_target(op: dict[str, Any]) -> None:
    with pytest.raises(NoTargetError):
        patch_user([op])


def test_remove_with_filter_matching_nothing_is_no_target() -> None:
    with pytest.raises(NoTargetError):
        patch_user([{"op": "remove", "path": "emails[type eq \"other\"]"}])


def test_remove_required_attribute_is_mutability() -> None:
    # §3.5.2.2: removing a required attribute is answered with scimType "mutability".
    with pytest.raises(MutabilityError):
        patch_user([{"op": "remove", "path": "userName"}])
    with pytest.raises(MutabilityError):
        apply_patch(stored_group(), [{"op": "remove", "path": "displayName"}], group_type(), resource_id="g1")


@pytest.mark.parametrize("value", [[{"value": "u1"}, {"value": "u2"}], {"value": "u1"}, [], "u1"])
def test_remove_with_value_is_invalid_value_naming_the_filter(value: Any) -> None:
    # §3.5.2.2 defines no value for remove; "remove these" and "remove all" are both guesses, so
    # neither is taken (a silent remove-all would drop every member).  The error shows the filter.
    with pytest.raises(InvalidValueError) as exc:
        apply_patch(stored_group(), [{"op": "Remove", "path": "members", "value": value}], group_type(), resource_id="g1")
    assert 'members[value eq \\"<id>\\"]' in exc.value.detail and "§3.5.2.2" in exc.value.detail
    with pytest.raises(InvalidValueError) as exc:
        patch_user([{"op": "remove", "path": "emails", "value": [{"value": "babs@jensen.org"}]}])
    assert 'emails[value eq' in exc.value.detail


def test_remove_members_with_null_value_or_filter_still_works() -> None:
    assert patch_group([{"op": "remove", "path": "members", "value": None}]).remove_all is True
    mc = patch_group([{"op": "remove", "path": 'members[value eq "u1"]'}, {"op": "remove", "path": 'members[value eq "u2"]'}])
    assert mc.remove_ids == ["u1", "u2"] and not mc.remove_all


# --- RFC 7644 §3.5.2.3 replace ----------------------------------------------------------------


def test_rfc_replace_members() -> None:
    mc = patch_group(RFC["replace_members"])
    assert mc.replace_all == RFC["replace_members"][0]["value"]
    assert mc.add == [] and mc.remove_ids == []


def test_rfc_replace_work_address() -> None:
    out = patch_user(RFC["replace_work_address"])
    assert out.data["addresses"][0] == RFC["replace_work_address"][0]["value"]
    assert out.data["addresses"][1] == stored_user()["addresses"][1]


def test_rfc_replace_work_street() -> None:
    out = patch_user(RFC["replace_work_street"])
    assert out.data["addresses"][0]["streetAddress"] == "1010 Broadway Ave"
    assert out.data["addresses"][0]["locality"] == "Hollywood"


def test_rfc_replace_without_path() -> None:
    out = patch_user(RFC["replace_no_path"], {"userName": "b", "emails": [{"value": "old@x"}], "schemas": [USER_SCHEMA]})
    assert emails(out) == RFC["replace_no_path"][0]["value"]["emails"]  # multi-valued: replaced, not merged
    assert out.data["nickName"] == "Babs"


def test_replace_complex_leaves_unspecified_sub_attributes() -> None:
    out = patch_user([{"op": "replace", "path": "name", "value": {"familyName": "Smith"}}])
    assert out.data["name"]["familyName"] == "Smith" and out.data["name"]["givenName"] == "Barbara"


def test_replace_of_absent_attribute_adds_it() -> None:
    out = patch_user([{"op": "replace", "path": "entitlements", "value": [{"value": "e1"}]}])
    assert out.data["entitlements"] == [{"value": "e1"}]


def test_replace_with_filter_and_no_sub_matching_nothing_is_no_target() -> None:
    with pytest.raises(NoTargetError):
        patch_user([{"op": "replace", "path": "addresses[type eq \"other\"]", "value": {"type": "other"}}])


def test_replace_with_null_unassigns_but_not_required() -> None:
    out = patch_user([{"op": "replace", "path": "title", "value": None}])
    assert "title" not in out.data
    with pytest.raises(InvalidValueError, match="userName"):
        patch_user([{"op": "replace", "path": "userName", "value": None}])
    with pytest.raises(InvalidValueError, match="userName"):
        patch_user([{"op": "replace", "value": {"userName": ""}}])


# --- filtered sub-attributes: create and merge ---------------------------------------------------


def test_filtered_replace_of_sub_attribute_creates_the_element() -> None:
    data = {"userName": "b", "emails": [{"value": "h@x", "type": "home"}], "schemas": [USER_SCHEMA]}
    out = patch_user([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "w@x"}], data)
    assert emails(out) == [{"value": "h@x", "type": "home"}, {"type": "work", "value": "w@x"}]


def test_several_sub_attribute_ops_with_one_filter_merge_into_one_element() -> None:
    data = {"userName": "b", "emails": [{"value": "h@x", "type": "home", "primary": True}], "schemas": [USER_SCHEMA]}
    out = patch_user([
        {"op": "add", "path": "emails[type eq \"work\"].value", "value": "w@x"},
        {"op": "add", "path": "emails[type eq \"work\"].primary", "value": True},
        {"op": "replace", "path": "emails[type eq \"work\"].display", "value": "Work"},
    ], data)
    assert emails(out) == [{"value": "h@x", "type": "home"}, {"type": "work", "value": "w@x", "primary": True, "display": "Work"}]


def test_filtered_sub_attribute_on_existing_element_is_set_in_place() -> None:
    out = patch_user([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}])
    assert emails(out)[0] == {"value": "new@example.com", "type": "work", "primary": True}
    assert len(emails(out)) == 2


def test_filter_that_cannot_describe_a_new_element_is_no_target() -> None:
    with pytest.raises(NoTargetError):
        patch_user([{"op": "replace", "path": "emails[type ne \"work\" and type ne \"home\"].value", "value": "x"}])


def test_filtered_add_without_sub_creates_or_merges() -> None:
    out = patch_user([{"op": "add", "path": "phoneNumbers[type eq \"fax\"]", "value": {"value": "1"}}])
    assert out.data["phoneNumbers"][-1] == {"type": "fax", "value": "1"}
    out = patch_user([{"op": "add", "path": "phoneNumbers[type eq \"work\"]", "value": {"display": "desk"}}])
    assert out.data["phoneNumbers"][0] == {"value": "555-555-5555", "type": "work", "display": "desk"}


def test_boolean_filter_value_given_as_string_is_invalid() -> None:
    # RFC 7644 §3.4.2.2: "True" in quotes is a string, not a boolean; the Entra plugin unquotes its own quirk.
    data = {"userName": "b", "roles": [{"primary": True, "value": "User"}], "schemas": [USER_SCHEMA]}
    with pytest.raises(ScimError):
        patch_user([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "Admin"}], data)


def test_boolean_filter_value_given_as_string_cannot_create_an_element() -> None:
    # RFC 7643 §2.3.2: the element the filter describes would get primary "True", a string.
    data = {"userName": "b", "schemas": [USER_SCHEMA]}
    with pytest.raises(InvalidValueError) as exc:
        patch_user([{"op": "replace", "path": "roles[primary eq \"True\"].value", "value": "Admin"}], data)
    assert "roles.primary" in exc.value.detail and "primary eq true" in exc.value.detail
    out = patch_user([{"op": "replace", "path": "roles[primary eq true].value", "value": "Admin"}], data)
    assert out.data["roles"] == [{"primary": True, "value": "Admin"}]


# --- primary ---------------------------------------------------------------------------------------


def test_new_primary_clears_the_others() -> None:
    out = patch_user([{"op": "add", "path": "emails", "value": [{"value": "n@x", "type": "other", "primary": True}]}])
    assert [e.get("primary") for e in emails(out)] == [None, None, True]
    out = patch_user([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": True}])
    assert [e.get("primary") for e in emails(out)] == [None, True]


def test_two_primaries_in_one_value_are_invalid() -> None:
    with pytest.raises(InvalidValueError, match="primary"):
        patch_user([{"op": "add", "path": "emails", "value": [{"value": "a", "primary": True}, {"value": "b", "primary": True}]}])


# --- op / path validation -------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["ADD", "Add", "add"])
def test_op_is_case_insensitive(op: str) -> None:
    assert patch_user([{"op": op, "path": "title", "value": "x"}]).data["title"] == "x"


@pytest.mark.parametrize("op", [{"op": "copy", "path": "title", "value": "x"}, {"path": "title", "value": "x"}, {"op": 1}, "add"])
def test_unknown_op_is_invalid_syntax(op: Any) -> None:
    with pytest.raises(InvalidSyntaxError):
        patch_user([op])


def test_empty_operations_is_invalid_syntax() -> None:
    with pytest.raises(InvalidSyntaxError):
        patch_user([])


@pytest.mark.parametrize("path", ["nosuch", "name.nosuch", "title[value eq \"x\"]", "emails[type eq", "emails..value", "title.sub"])
def test_bad_paths_are_invalid_path(path: str) -> None:
    with pytest.raises(InvalidPathError):
        patch_user([{"op": "replace", "path": path, "value": "x"}])


def test_add_without_value_and_pathless_non_object_are_invalid() -> None:
    with pytest.raises(InvalidSyntaxError):
        patch_user([{"op": "add", "path": "title"}])
    with pytest.raises(InvalidSyntaxError):
        patch_user([{"op": "replace", "value": "x"}])


# --- mutability -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "id", "value": "other"},
        {"op": "replace", "path": "meta", "value": {"created": "2010-01-23T04:56:22Z"}},
        {"op": "replace", "path": "meta.lastModified", "value": "2010-01-23T04:56:22Z"},
        {"op": "add", "path": "groups", "value": [{"value": "g"}]},
        {"op": "remove", "path": "groups"},
        {"op": "replace", "path": f"{ENT}:manager.displayName", "value": "Boss"},
        {"op": "replace", "path": "schemas", "value": [USER_SCHEMA]},
        {"op": "replace", "value": {"id": "other"}},
    ],
)
def test_readonly_targets_are_mutability(op: dict[str, Any]) -> None:
    with pytest.raises(MutabilityError):
        patch_user([op])


def test_readonly_attributes_inside_a_pathless_value_are_ignored() -> None:
    # Okta echoes the id (and clients echo meta) in path-less replace values.
    out = patch_user([{"op": "replace", "value": {"id": RID, "meta": {"version": "x"}, "schemas": [USER_SCHEMA], "title": "t"}}])
    assert out.data["title"] == "t" and "meta" not in out.data and "id" not in out.data


@pytest.mark.parametrize("path", ["members[value eq \"u1\"].value", "members[value eq \"u1\"].type", "members.value"])
def test_member_immutable_sub_attributes_are_mutability(path: str) -> None:
    with pytest.raises(MutabilityError):
        apply_patch(stored_group(), [{"op": "replace", "path": path, "value": "u2"}], group_type(), resource_id="g1")


# --- types -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "path"),
    [
        ({"op": "replace", "path": "active", "value": "yes"}, "active"),
        ({"op": "add", "path": "emails", "value": [{"value": 5}]}, "emails.value"),
        ({"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "maybe"}, "emails.primary"),
        ({"op": "replace", "path": "name.givenName", "value": ["x"]}, "name.givenName"),
        ({"op": "replace", "value": {"displayName": 3}}, "displayName"),
    ],
)
def test_values_are_type_checked(op: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidValueError) as exc:
        patch_user([op])
    assert path in exc.value.detail


@pytest.mark.parametrize(
    ("op", "path"),
    [
        ({"op": "Replace", "path": "active", "value": "False"}, "active"),
        ({"op": "replace", "value": {"active": "true"}}, "active"),
        ({"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "True"}, "emails.primary"),
        ({"op": "add", "path": "emails", "value": [{"value": "n@x", "primary": "True"}]}, "emails.primary"),
    ],
)
def test_boolean_strings_are_invalid_value(op: dict[str, Any], path: str) -> None:
    # RFC 7643 §2.3.2: booleans are JSON true/false for every client; IdPs that send strings are
    # normalised in their plugin.
    with pytest.raises(InvalidValueError) as exc:
        patch_user([op])
    assert f"'{path}'" in exc.value.detail and "JSON boolean" in exc.value.detail


# --- extensions ----------------------------------------------------------------------------------------


def test_extension_attribute_paths() -> None:
    out = patch_user([
        {"op": "add", "path": f"{ENT}:employeeNumber", "value": "7"},
        {"op": "replace", "path": f"{ENT.upper()}:manager.value", "value": "boss"},
    ])
    assert out.data[ENT] == {"employeeNumber": "7", "manager": {"value": "boss"}}
    assert out.data["schemas"] == [USER_SCHEMA, ENT]


def test_pathless_value_with_dotted_and_urn_keys() -> None:
    out = patch_user([{"op": "replace", "value": {
        "name.givenName": "Babs",
        f"{ENT}:department": "Tours",
        ENT: {"costCenter": "4130"},
        "active": False,
    }}])
    assert out.data["name"]["givenName"] == "Babs" and out.data["name"]["familyName"] == "Jensen"
    assert out.data[ENT] == {"department": "Tours", "costCenter": "4130"}
    assert out.data["active"] is False


def test_remove_last_extension_attribute_drops_extension_and_schema() -> None:
    data = stored_user() | {ENT: {"department": "x"}}
    out = patch_user([{"op": "remove", "path": f"{ENT}:department"}], data)
    assert ENT not in out.data and out.data["schemas"] == [USER_SCHEMA]
    out = patch_user([{"op": "remove", "path": ENT}], data)
    assert ENT not in out.data


def test_manager_is_complex() -> None:
    # RFC 7643 §4.3: only {"value": id} sets manager; the unqualified name resolves (RFC 7644 §3.10).
    for op in (
        {"op": "add", "path": f"{ENT}:manager", "value": {"value": "boss"}},
        {"op": "Add", "path": "manager", "value": {"value": "boss"}},
        {"op": "replace", "value": {ENT: {"manager": {"value": "boss"}}}},
    ):
        assert patch_user([op]).data[ENT] == {"manager": {"value": "boss"}}, op


@pytest.mark.parametrize(
    "op",
    [
        {"op": "Replace", "path": f"{ENT}:manager", "value": "boss"},
        {"op": "Add", "path": "manager", "value": [{"value": "boss"}]},
        {"op": "add", "path": "manager", "value": ["boss"]},
        {"op": "replace", "value": {ENT: {"manager": "boss"}}},
        {"op": "replace", "value": {f"{ENT}:manager": "boss"}},
    ],
)
def test_manager_bare_id_or_array_is_invalid_value(op: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError) as exc:
        patch_user([op])
    assert f"'{ENT}:manager'" in exc.value.detail and '{"value": "<manager id>"}' in exc.value.detail


def test_custom_extension_is_patched_opaquely() -> None:
    out = patch_user([
        {"op": "add", "path": f"{CUSTOM}:badge", "value": "7"},
        {"op": "add", "path": CUSTOM, "value": {"floor": 3}},
    ])
    assert out.data[CUSTOM] == {"badge": "7", "floor": 3}
    assert CUSTOM in out.data["schemas"]
    out = apply_patch(out.data, [{"op": "remove", "path": f"{CUSTOM}:badge"}], user_type(), resource_id=RID)
    assert out.data[CUSTOM] == {"floor": 3}


# --- members ---------------------------------------------------------------------------------------------


def test_member_ops_fold_in_order() -> None:
    mc = patch_group([
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
        {"op": "remove", "path": "members[value eq \"a\"]"},
    ])
    assert [m["value"] for m in mc.add] == ["b"] and mc.remove_ids == ["a"]
    mc = patch_group([
        {"op": "replace", "path": "members", "value": [{"value": "a", "type": "User"}]},
        {"op": "add", "path": "members", "value": [{"value": "c", "type": "Group"}]},
        {"op": "remove", "path": "members[type eq \"Group\"]"},
    ])
    assert mc.replace_all == [{"value": "a", "type": "User"}] and mc.remove_filter == [] and mc.add == []


def test_member_remove_by_other_filter_is_returned_as_filter() -> None:
    mc = patch_group([{"op": "remove", "path": "members[type eq \"Group\"]"}])
    assert mc.remove_filter == [parse_filter('type eq "Group"')] and mc.remove_ids == []


def test_members_in_pathless_value() -> None:
    out = apply_patch(stored_group(), [{"op": "replace", "value": {"id": "g1", "displayName": "New", "members": [{"value": "u"}]}}],
                      group_type(), resource_id="g1")
    assert out.data["displayName"] == "New" and out.changed
    assert out.members is not None and out.members.replace_all == [{"value": "u"}]


def test_member_without_value_is_invalid() -> None:
    with pytest.raises(InvalidValueError):
        patch_group([{"op": "add", "path": "members", "value": [{"display": "x"}]}])


def test_no_member_ops_means_no_member_changes() -> None:
    out = apply_patch(stored_group(), [{"op": "replace", "path": "displayName", "value": "X"}], group_type(), resource_id="g1")
    assert out.members is None


# --- atomicity, password ------------------------------------------------------------------------------------


def test_request_is_atomic_and_input_untouched() -> None:
    data = stored_user()
    before = copy.deepcopy(data)
    with pytest.raises(ScimError):
        apply_patch(data, [
            {"op": "replace", "path": "title", "value": "changed"},
            {"op": "remove", "path": "emails"},
            {"op": "replace", "path": "id", "value": "x"},
        ], user_type(), resource_id=RID)
    assert data == before
    out = apply_patch(data, [{"op": "remove", "path": "emails"}], user_type(), resource_id=RID)
    assert data == before and "emails" not in out.data


def test_password_is_reported_not_stored() -> None:
    out = patch_user([{"op": "replace", "path": "password", "value": "n3w"}])
    assert out.password_set is True and "password" not in out.data and out.changed is False


def test_member_remove_filter_is_evaluated_per_member() -> None:
    from gateway.core.patch import member_matches

    (node,) = patch_group([{"op": "remove", "path": "members[type eq \"Group\"]"}]).remove_filter
    assert member_matches(node, {"value": "g2", "type": "Group", "display": None}, group_type())
    assert not member_matches(node, {"value": "u1", "type": "User", "display": None}, group_type())
