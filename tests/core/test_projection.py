"""project / parse_attribute_list: RFC 7644 §3.9 and RFC 7643 §7 "returned"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.core.projection import parse_attribute_list, project
from gateway.core.schema import ENTERPRISE_USER_SCHEMA as ENT, USER_SCHEMA, Attribute, ResourceType, group_type, user_type

SAMPLES = Path(__file__).parent / "samples"
CUSTOM = "urn:ietf:params:scim:schemas:extension:mycompany:2.0:User"


def enterprise_user() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLES / "rfc7643_8_3_enterprise_user.json").read_text())
    return doc


def full_user() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLES / "rfc7643_8_2_full_user.json").read_text())
    return doc


# --- parse_attribute_list --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        (" , ", None),
        ("userName", ["userName"]),
        ("userName, name.givenName ,emails.value", ["userName", "name.givenName", "emails.value"]),
        (f"{ENT}:department,{ENT}", [f"{ENT}:department", ENT]),
    ],
)
def test_parse_attribute_list(text: str | None, expected: list[str] | None) -> None:
    assert parse_attribute_list(text) == expected


# --- default -----------------------------------------------------------------------------------


def test_default_returns_the_same_dict_when_nothing_is_hidden() -> None:
    doc = enterprise_user()
    assert project(doc, user_type()) is doc


def test_default_drops_never_returned_password_without_touching_input() -> None:
    doc = full_user()
    out = project(doc, user_type())
    assert "password" not in out and "password" in doc
    assert {k: v for k, v in doc.items() if k != "password"} == out


# --- attributes ---------------------------------------------------------------------------------


def test_attributes_keep_always_returned_and_named_only() -> None:
    out = project(enterprise_user(), user_type(), attributes=["userName"])
    assert out == {"schemas": [USER_SCHEMA], "id": "2819c223-7f76-453a-919d-413861904646", "userName": "bjensen@example.com"}


def test_attributes_are_case_insensitive_and_keep_canonical_names() -> None:
    out = project(enterprise_user(), user_type(), attributes=["USERNAME", "Name.GivenName", "EMAILS.value"])
    assert out["userName"] == "bjensen@example.com"
    assert out["name"] == {"givenName": "Barbara"}
    assert out["emails"] == [{"value": "bjensen@example.com"}]
    assert "displayName" not in out and "meta" not in out


def test_attributes_sub_attribute_of_meta() -> None:
    out = project(enterprise_user(), user_type(), attributes=["meta.lastModified"])
    assert out["meta"] == {"lastModified": "2011-05-13T04:42:34Z"}


def test_attributes_whole_extension_and_extension_attribute() -> None:
    out = project(enterprise_user(), user_type(), attributes=[ENT.lower()])
    assert out[ENT] == enterprise_user()[ENT]
    assert out["schemas"] == [USER_SCHEMA, ENT]
    out = project(enterprise_user(), user_type(), attributes=[f"{ENT}:department", f"{ENT}:manager.value"])
    assert out[ENT] == {"department": "Tour Operations", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}


def test_extension_left_empty_is_dropped_with_its_schema_urn() -> None:
    out = project(enterprise_user(), user_type(), attributes=["displayName"])
    assert ENT not in out and out["schemas"] == [USER_SCHEMA]


def test_attributes_cannot_reveal_never_returned() -> None:
    out = project(full_user(), user_type(), attributes=["password", "userName"])
    assert "password" not in out and out["userName"] == "bjensen@example.com"


def test_unknown_names_are_ignored() -> None:
    out = project(enterprise_user(), user_type(), attributes=["nosuch", "name.nosuch"])
    assert set(out) == {"schemas", "id"}


def test_group_members_by_name() -> None:
    group = json.loads((SAMPLES / "rfc7643_8_4_group.json").read_text())
    out = project(group, group_type(), attributes=["members.value"])
    assert out["members"] == [{"value": m["value"]} for m in group["members"]]
    assert "displayName" not in out


# --- excludedAttributes --------------------------------------------------------------------------


def test_excluded_attributes() -> None:
    out = project(enterprise_user(), user_type(), excluded=["emails", "name.givenName", f"{ENT}:manager"])
    assert "emails" not in out
    assert out["name"] == {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen"}
    assert "manager" not in out[ENT] and out[ENT]["department"] == "Tour Operations"
    assert out["userName"] == "bjensen@example.com"


def test_excluded_has_no_effect_on_always_returned() -> None:
    out = project(enterprise_user(), user_type(), excluded=["id", "schemas", "userName"])
    assert "id" in out and "schemas" in out and "userName" not in out


def test_excluded_whole_extension() -> None:
    out = project(enterprise_user(), user_type(), excluded=[ENT])
    assert ENT not in out and out["schemas"] == [USER_SCHEMA]


def test_excluded_members_of_group() -> None:
    group = json.loads((SAMPLES / "rfc7643_8_4_group.json").read_text())
    out = project(group, group_type(), excluded=["members"])
    assert "members" not in out and out["displayName"] == "Tour Guides"


# --- returned: request, custom extensions ----------------------------------------------------------


def _request_type() -> ResourceType:
    attrs = {
        "id": Attribute("id", "string", mutability="readOnly", returned="always"),
        "schemas": Attribute("schemas", "reference", multi_valued=True, returned="always"),
        "name": Attribute("name", "string"),
        "audit": Attribute("audit", "string", returned="request"),
        "info": Attribute("info", "complex", sub_attributes={
            "a": Attribute("a", "string"),
            "b": Attribute("b", "string", returned="request"),
            "c": Attribute("c", "string", returned="always"),
        }),
    }
    return ResourceType("Thing", "/Things", "urn:example:Thing", "", attrs, {})


def test_returned_request_only_when_named() -> None:
    rt = _request_type()
    doc = {"schemas": ["urn:example:Thing"], "id": "1", "name": "n", "audit": "x", "info": {"a": "1", "b": "2", "c": "3"}}
    default = project(doc, rt)
    assert "audit" not in default and default["info"] == {"a": "1", "c": "3"}
    named = project(doc, rt, attributes=["audit", "info.b"])
    assert named == {"schemas": ["urn:example:Thing"], "id": "1", "audit": "x", "info": {"b": "2", "c": "3"}}


def test_custom_extension_is_returned_by_default_and_by_urn() -> None:
    doc = enterprise_user() | {CUSTOM: {"badge": "7", "floor": 3}}
    doc["schemas"] = [USER_SCHEMA, ENT, CUSTOM]
    assert project(doc, user_type())[CUSTOM] == {"badge": "7", "floor": 3}
    assert project(doc, user_type(), attributes=[CUSTOM])[CUSTOM] == {"badge": "7", "floor": 3}
    assert project(doc, user_type(), attributes=[f"{CUSTOM}:badge"])[CUSTOM] == {"badge": "7"}
    out = project(doc, user_type(), attributes=["userName"])
    assert CUSTOM not in out and CUSTOM not in out["schemas"]
    assert CUSTOM not in project(doc, user_type(), excluded=[CUSTOM])


# --- the fast path (speed itself is measured in bench/, never asserted here) -------------------------------


def test_default_projection_returns_the_stored_dict_without_copying() -> None:
    doc = enterprise_user()
    doc.pop("password", None)
    assert project(doc, user_type()) is doc
