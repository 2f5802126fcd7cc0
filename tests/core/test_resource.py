"""prepare_write: POST/PUT bodies into stored data documents (RFC 7643 §2, §7; RFC 7644 §3.3, §3.5.1)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.core.errors import InvalidValueError, MutabilityError
from gateway.core.resource import Prepared, prepare_write
from gateway.core.schema import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    Attribute,
    ResourceType,
    group_type,
    user_type,
)

SAMPLES = Path(__file__).parent / "samples"
CUSTOM = "urn:ietf:params:scim:schemas:extension:mycompany:2.0:User"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())  # type: ignore[no-any-return]


def user(**attrs: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": "bjensen", **attrs}


def thing_type() -> ResourceType:
    """A resource type with the attribute types and mutabilities the standard schemas lack."""
    attrs = {
        "name": Attribute("name", "string", required=True),
        "count": Attribute("count", "integer"),
        "ratio": Attribute("ratio", "decimal"),
        "since": Attribute("since", "dateTime"),
        "badge": Attribute("badge", "string", mutability="immutable"),
        "tags": Attribute("tags", "string", multi_valued=True),
        "secret": Attribute("secret", "string", mutability="writeOnly", returned="never"),
        "hash": Attribute("hash", "binary"),
        "id": Attribute("id", "string", mutability="readOnly", returned="always"),
    }
    return ResourceType("Thing", "/Things", "urn:example:Thing", "", attrs, {})


def thing(**attrs: Any) -> dict[str, Any]:
    return {"schemas": ["urn:example:Thing"], "name": "n", **attrs}


# --- RFC 7643 §8 example resources ------------------------------------------------------


def test_rfc7643_full_user_becomes_stored_document() -> None:
    body = sample("rfc7643_8_2_full_user.json")
    original = copy.deepcopy(body)
    p = prepare_write(body, user_type())
    assert isinstance(p, Prepared)
    assert body == original  # the input is not modified
    for key in ("id", "meta", "groups", "password"):
        assert key not in p.data
    assert p.password_set is True
    assert p.members is None
    assert p.data["userName"] == "bjensen@example.com"
    assert p.data["name"]["honorificSuffix"] == "III"
    assert p.data["emails"][0] == {"value": "bjensen@example.com", "type": "work", "primary": True}
    assert p.data["x509Certificates"] == body["x509Certificates"]
    assert p.data["schemas"] == [USER_SCHEMA]
    # everything the client may write is kept as given
    writable = {k: v for k, v in body.items() if k not in ("id", "meta", "groups", "password")}
    assert {k: v for k, v in p.data.items()} == writable


def test_rfc7643_enterprise_user_keeps_extension_and_ignores_readonly_sub_attribute() -> None:
    p = prepare_write(sample("rfc7643_8_3_enterprise_user.json"), user_type())
    ext = p.data[ENTERPRISE_USER_SCHEMA]
    assert ext["employeeNumber"] == "701984"
    # manager.displayName is readOnly (RFC 7643 §4.3): ignored on input (§7)
    assert ext["manager"] == {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d"}
    assert p.data["schemas"] == [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]


def test_rfc7643_group_members_are_returned_separately() -> None:
    p = prepare_write(sample("rfc7643_8_4_group.json"), group_type())
    assert p.data == {"displayName": "Tour Guides", "schemas": [GROUP_SCHEMA]}
    assert p.members is not None
    assert [m["value"] for m in p.members] == [
        "2819c223-7f76-453a-919d-413861904646",
        "902c246b-6245-4190-8e05-00816be7344a",
    ]
    assert p.members[0]["display"] == "Babs Jensen"


# --- names --------------------------------------------------------------------------------


def test_attribute_names_are_canonicalised_case_insensitively() -> None:
    body = {
        "SCHEMAS": [USER_SCHEMA.upper(), ENTERPRISE_USER_SCHEMA],
        "USERNAME": "bjensen",
        "Name": {"GivenName": "Barbara"},
        "emails": [{"Value": "b@example.com", "Primary": True}],
        ENTERPRISE_USER_SCHEMA.lower(): {"Department": "Tour Operations"},
    }
    p = prepare_write(body, user_type())
    assert p.data["userName"] == "bjensen"
    assert p.data["name"] == {"givenName": "Barbara"}
    assert p.data["emails"] == [{"value": "b@example.com", "primary": True}]
    assert p.data[ENTERPRISE_USER_SCHEMA] == {"department": "Tour Operations"}


def test_same_attribute_twice_in_different_case_is_rejected() -> None:
    with pytest.raises(InvalidValueError, match="userName"):
        prepare_write({"schemas": [USER_SCHEMA], "userName": "a", "USERNAME": "b"}, user_type())


def test_urn_qualified_top_level_extension_attributes_are_moved_under_the_urn() -> None:
    body = user(**{
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        f"{ENTERPRISE_USER_SCHEMA}:employeeNumber": "7",
        f"{ENTERPRISE_USER_SCHEMA}:manager.value": "boss",
        ENTERPRISE_USER_SCHEMA: {"costCenter": "4130"},
    })
    p = prepare_write(body, user_type())
    assert p.data[ENTERPRISE_USER_SCHEMA] == {"employeeNumber": "7", "manager": {"value": "boss"}, "costCenter": "4130"}


def test_core_urn_qualified_attribute_is_accepted() -> None:
    p = prepare_write({"schemas": [USER_SCHEMA], f"{USER_SCHEMA}:userName": "bjensen"}, user_type())
    assert p.data["userName"] == "bjensen"


def test_unknown_attributes_of_known_schemas_are_ignored() -> None:
    # RFC 7644 §3.3: the server may ignore POSTed content; Entra sends "department" at the top level.
    p = prepare_write(user(department="x", name={"givenName": "B", "nick": "x"}), user_type())
    assert "department" not in p.data
    assert p.data["name"] == {"givenName": "B"}


# --- schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("schemas", [None, [], [GROUP_SCHEMA], "urn:ietf:params:scim:schemas:core:2.0:User", [1]])
def test_schemas_must_list_the_core_schema(schemas: Any) -> None:
    body = {"userName": "bjensen"}
    if schemas is not None:
        body["schemas"] = schemas
    with pytest.raises(InvalidValueError, match="schemas"):
        prepare_write(body, user_type())


def test_extension_used_but_not_listed_in_schemas_is_rejected() -> None:
    with pytest.raises(InvalidValueError, match="not listed"):
        prepare_write(user(**{ENTERPRISE_USER_SCHEMA: {"department": "x"}}), user_type())
    with pytest.raises(InvalidValueError, match="not listed"):
        prepare_write(user(**{f"{ENTERPRISE_USER_SCHEMA}:department": "x"}), user_type())
    with pytest.raises(InvalidValueError):
        prepare_write(user(**{CUSTOM: {"badge": "x"}}), user_type())


def test_listed_extension_without_data_is_fine_and_not_in_stored_schemas() -> None:
    p = prepare_write(user(schemas=[USER_SCHEMA, ENTERPRISE_USER_SCHEMA, "http://schemas.microsoft.com/x"]), user_type())
    assert p.data["schemas"] == [USER_SCHEMA]


def test_custom_extension_listed_in_schemas_is_stored_opaquely() -> None:
    body = user(schemas=[USER_SCHEMA, CUSTOM], **{CUSTOM: {"Badge": "7", "nested": {"a": [1]}}, f"{CUSTOM}:floor": 3})
    p = prepare_write(body, user_type())
    assert p.data[CUSTOM] == {"Badge": "7", "nested": {"a": [1]}, "floor": 3}
    assert p.data["schemas"] == [USER_SCHEMA, CUSTOM]


# --- readOnly / writeOnly ------------------------------------------------------------------


def test_readonly_attributes_are_ignored() -> None:
    p = prepare_write(user(id="x", meta={"created": "2010-01-23T04:56:22Z"}, groups=[{"value": "g"}]), user_type())
    assert p.data == {"userName": "bjensen", "schemas": [USER_SCHEMA]}


def test_password_is_never_stored() -> None:
    p = prepare_write(user(password="s3cret"), user_type())
    assert "password" not in p.data and p.password_set is True
    p = prepare_write(user(password=None), user_type())
    assert p.password_set is False
    with pytest.raises(InvalidValueError, match="password"):
        prepare_write(user(password=123), user_type())


# --- types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "path"),
    [
        ({"active": "yes"}, "active"),
        ({"active": 1}, "active"),
        ({"userName": 5}, "userName"),
        ({"displayName": ["a"]}, "displayName"),
        ({"emails": {"value": "a@b"}}, "emails"),
        ({"emails": ["a@b"]}, "emails"),
        ({"emails": [{"value": 5}]}, "emails.value"),
        ({"emails": [{"value": "a", "primary": "true"}]}, "emails.primary"),
        ({"name": "Barbara"}, "name"),
        ({"name": {"givenName": True}}, "name.givenName"),
        ({"x509Certificates": [{"value": "not base64!"}]}, "x509Certificates.value"),
        ({"profileUrl": 3}, "profileUrl"),
    ],
)
def test_wrong_types_are_invalid_value_naming_the_path(attrs: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidValueError) as exc:
        prepare_write(user(**attrs), user_type())
    assert f"'{path}'" in exc.value.detail
    assert exc.value.status == 400 and exc.value.scim_type == "invalidValue"


@pytest.mark.parametrize("value", ["True", "false", "FALSE"])
def test_string_boolean_is_refused_asking_for_a_json_boolean(value: str) -> None:
    # RFC 7643 §2.3.2: no coercion for any client; IdPs that send strings are normalised in their plugin.
    for attrs, path in (({"active": value}, "active"), ({"emails": [{"value": "a@b", "primary": value}]}, "emails.primary")):
        with pytest.raises(InvalidValueError) as exc:
            prepare_write(user(**attrs), user_type())
        assert f"'{path}'" in exc.value.detail and "JSON boolean" in exc.value.detail and "§2.3.2" in exc.value.detail


@pytest.mark.parametrize("manager", ["boss", ["boss"], [{"value": "boss"}]])
def test_manager_must_be_an_object(manager: Any) -> None:
    # RFC 7643 §4.3: manager is complex; a bare id or an array is refused with the shape to send.
    body = {"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": "b", ENTERPRISE_USER_SCHEMA: {"manager": manager}}
    with pytest.raises(InvalidValueError) as exc:
        prepare_write(body, user_type())
    assert f"'{ENTERPRISE_USER_SCHEMA}:manager'" in exc.value.detail
    assert '{"value": "<manager id>"}' in exc.value.detail and "§4.3" in exc.value.detail
    body[ENTERPRISE_USER_SCHEMA] = {"manager": {"value": "boss"}}
    assert prepare_write(body, user_type()).data[ENTERPRISE_USER_SCHEMA] == {"manager": {"value": "boss"}}


@pytest.mark.parametrize(
    ("attrs", "ok"),
    [
        ({"count": 3}, True),
        ({"count": 3.5}, False),
        ({"count": True}, False),
        ({"count": "3"}, False),
        ({"ratio": 3}, True),
        ({"ratio": 0.5}, True),
        ({"ratio": False}, False),
        ({"since": "2010-01-23T04:56:22Z"}, True),
        ({"since": "2010-01-23T04:56:22.123+02:00"}, True),
        ({"since": "2010-01-23"}, False),
        ({"since": "2010-13-45T04:56:22Z"}, False),
        ({"since": 1264222582}, False),
        ({"tags": ["a", "b"]}, True),
        ({"tags": "a"}, False),
        ({"tags": [["a"]]}, False),
        ({"hash": "aGVsbG8="}, True),
        ({"hash": "@@"}, False),
    ],
)
def test_scalar_types(attrs: dict[str, Any], ok: bool) -> None:
    if ok:
        p = prepare_write(thing(**attrs), thing_type())
        (key, value), = attrs.items()
        assert p.data[key] == value
    else:
        with pytest.raises(InvalidValueError):
            prepare_write(thing(**attrs), thing_type())


def test_null_and_empty_mean_unassigned() -> None:
    body = user(displayName=None, emails=[], name={"givenName": None}, phoneNumbers=[None], addresses=None)
    p = prepare_write(body, user_type())
    assert p.data == {"userName": "bjensen", "schemas": [USER_SCHEMA]}


def test_identical_values_are_not_duplicated() -> None:
    p = prepare_write(user(emails=[{"value": "a@b"}, {"value": "a@b"}]), user_type())
    assert p.data["emails"] == [{"value": "a@b"}]


# --- required ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_username_is_required(value: Any) -> None:
    body = {"schemas": [USER_SCHEMA]}
    if value is not None:
        body["userName"] = value
    with pytest.raises(InvalidValueError, match="userName"):
        prepare_write(body, user_type())


def test_group_display_name_is_required() -> None:
    with pytest.raises(InvalidValueError, match="displayName"):
        prepare_write({"schemas": [GROUP_SCHEMA], "members": []}, group_type())


# --- members ------------------------------------------------------------------------------------


def test_members_absent_null_and_empty() -> None:
    g = {"schemas": [GROUP_SCHEMA], "displayName": "G"}
    assert prepare_write(g, group_type()).members is None
    assert prepare_write({**g, "members": None}, group_type()).members == []
    assert prepare_write({**g, "members": []}, group_type()).members == []


def test_member_without_value_is_rejected() -> None:
    with pytest.raises(InvalidValueError, match="members"):
        prepare_write({"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"display": "x"}]}, group_type())


def test_member_items_are_canonicalised_and_nulls_dropped() -> None:
    body = {"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"Value": "u1", "$ref": None, "TYPE": "User"}]}
    assert prepare_write(body, group_type()).members == [{"value": "u1", "type": "User"}]


# --- primary ------------------------------------------------------------------------------------


def test_at_most_one_primary() -> None:
    with pytest.raises(InvalidValueError, match="primary"):
        prepare_write(user(emails=[{"value": "a", "primary": True}, {"value": "b", "primary": True}]), user_type())
    p = prepare_write(user(emails=[{"value": "a", "primary": True}, {"value": "b", "primary": False}]), user_type())
    assert [e.get("primary") for e in p.data["emails"]] == [True, False]


# --- PUT and immutable ------------------------------------------------------------------------


def test_put_immutable_attribute_cannot_change() -> None:
    existing = prepare_write(thing(badge="b1"), thing_type()).data
    with pytest.raises(MutabilityError, match="badge"):
        prepare_write(thing(badge="b2"), thing_type(), existing=existing)
    assert prepare_write(thing(badge="b1"), thing_type(), existing=existing).data["badge"] == "b1"
    # omitted: the value already set stays (an immutable value cannot be cleared by PUT)
    assert prepare_write(thing(), thing_type(), existing=existing).data["badge"] == "b1"


def test_put_immutable_attribute_can_be_set_when_it_had_no_value() -> None:
    existing = prepare_write(thing(), thing_type()).data
    assert prepare_write(thing(badge="b"), thing_type(), existing=existing).data["badge"] == "b"


def test_put_replaces_readwrite_attributes() -> None:
    existing = prepare_write(user(title="Tour Guide", nickName="Babs"), user_type()).data
    p = prepare_write(user(title="Manager"), user_type(), existing=existing)
    assert p.data == {"userName": "bjensen", "title": "Manager", "schemas": [USER_SCHEMA]}


def test_writeonly_attribute_of_a_custom_type_is_stored() -> None:
    # Only "password" is kept out of data; other writeOnly attributes are stored (never returned).
    assert prepare_write(thing(secret="s"), thing_type()).data["secret"] == "s"
