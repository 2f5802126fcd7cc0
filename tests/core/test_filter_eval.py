"""The reference evaluator against the RFC 7644 §3.4.2.2 examples and RFC 7643 attribute characteristics."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.errors import InvalidFilterError
from gateway.core.filter import matches, matches_value, parse_filter, validate
from gateway.core.schema import ENTERPRISE_USER_SCHEMA, USER_SCHEMA, group_type, user_type

ENT = ENTERPRISE_USER_SCHEMA

BJENSEN: dict[str, Any] = {
    "schemas": [USER_SCHEMA, ENT],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "bjensen",
    "userName": "bjensen@example.com",
    "name": {"familyName": "O'Malley", "givenName": "Barbara", "formatted": "Ms. Barbara J Jensen III"},
    "title": "Tour Guide",
    "userType": "Employee",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "roles": [{"value": "admin", "primary": True}],
    "groups": [{"value": "e9e30dba", "display": "Tour Guides", "type": "direct"}],
    ENT: {"employeeNumber": "701984", "department": "Tour Operations",
          "manager": {"value": "26118915", "displayName": "John Smith"}},
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": 'W/"3694e05e9dff591"',
        "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
    },
}

INTERN: dict[str, Any] = {
    "schemas": [USER_SCHEMA],
    "id": "c3a1",
    "userName": "JSmith",
    "userType": "Intern",
    "active": False,
    "emails": [{"value": "js@EXAMPLE.org", "type": "work"}],
    "meta": {"resourceType": "User", "created": "2011-05-13T04:42:34.250+02:00",
             "lastModified": "2011-05-13T04:42:35.5Z", "version": 'W/"1"'},
}


def m(text: str, res: dict[str, Any] = BJENSEN) -> bool:
    return matches(parse_filter(text), res, user_type())


# Figure 2 examples and the §3.4.2.2 example filters.
@pytest.mark.parametrize(
    "text,bjensen,intern",
    [
        ('userName eq "bjensen@example.com"', True, False),
        ('userName eq "BJENSEN@EXAMPLE.COM"', True, False),  # userName is caseExact=false
        ('name.familyName co "O\'Malley"', True, False),
        ('userName sw "J"', False, True),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', False, True),
        ("title pr", True, False),
        ('meta.lastModified gt "2011-05-13T04:42:34Z"', False, True),
        ('meta.lastModified ge "2011-05-13T04:42:34Z"', True, True),
        ('meta.lastModified lt "2011-05-13T04:42:34Z"', False, False),
        ('meta.lastModified le "2011-05-13T04:42:34Z"', True, False),
        ('title pr and userType eq "Employee"', True, False),
        ('title pr or userType eq "Intern"', True, True),
        (f'schemas eq "{ENT}"', True, False),
        ('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', True, False),
        ('userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")', False, False),
        ('userType eq "Employee" and (emails.type eq "work")', True, False),
        ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', True, False),
        ('emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]',
         True, False),
    ],
)
def test_rfc_examples(text: str, bjensen: bool, intern: bool) -> None:
    assert m(text, BJENSEN) is bjensen
    assert m(text, INTERN) is intern


def test_case_exact_attributes() -> None:
    assert m('externalId eq "bjensen"')
    assert not m('externalId eq "BJensen"')  # externalId is caseExact
    assert not m('id eq "2819C223-7F76-453A-919D-413861904646"')
    assert m('id eq "2819c223-7f76-453a-919d-413861904646"')
    assert m('groups.value eq "e9e30dba"') and not m('groups.value eq "E9E30DBA"')
    assert m('groups.display eq "tour guides"')  # display is not caseExact


def test_string_operators() -> None:
    assert m('title co "guide"') and m('title sw "tour"') and m('title ew "GUIDE"')
    assert not m('title ew "tour"')
    assert m('title co ""') and m('title sw ""')
    assert m('title gt "Tour"') and m('title lt "tour z"') and not m('title gt "tour guide"')
    assert m('title ge "tour guide"') and m('title le "TOUR GUIDE"')


def test_multi_valued_any_value_matches() -> None:
    assert m('emails.value eq "babs@jensen.org"')
    assert m('emails.type eq "home"')
    assert m('emails co "jensen.org"')  # complex without sub-attribute uses .value
    assert not m('emails[type eq "home" and value co "example.com"]')


def test_ne_is_complement_of_eq() -> None:
    assert m('title ne "boss"') and not m('title ne "tour guide"')
    assert m('nickName ne "x"')  # unassigned attribute is "not identical" to x
    assert not m('emails.value ne "babs@jensen.org"')  # one email equals it
    for text in ['title ne "boss"', 'emails.value ne "babs@jensen.org"', 'nickName ne "x"']:
        neg = text.replace(" ne ", " eq ")
        assert m(text) is (not m(neg))


def test_present() -> None:
    assert not m("nickName pr")
    assert m("name pr") and m("emails pr") and m(f"{ENT}:manager pr") and m("meta pr")
    assert not m("title pr", {**BJENSEN, "title": ""})
    assert not m("emails pr", {**BJENSEN, "emails": []})
    assert not m("name pr", {**BJENSEN, "name": {}})
    assert not m("emails pr", {**BJENSEN, "emails": [{}]})
    assert m("active pr", INTERN)  # false is a value


def test_null_comparisons() -> None:
    assert m("nickName eq null") and not m("title eq null")
    assert m("title ne null") and not m("nickName ne null")
    with pytest.raises(InvalidFilterError):
        m("title gt null")


def test_booleans() -> None:
    assert m("active eq true") and not m("active eq false")
    assert m("active eq false", INTERN)
    with pytest.raises(InvalidFilterError, match="unquoted"):
        m('active eq "True"')  # a quoted boolean is a string: strict RFC (plugins normalise their IdP's quirk)
    assert m("roles[primary eq true]")
    with pytest.raises(InvalidFilterError):
        m('roles[primary eq "true"]')
    assert not m("emails[type eq \"home\" and primary eq true]")
    assert m("active ne false")


@pytest.mark.parametrize("text", ["active gt true", "active le false", "active co \"t\"", "roles.primary ge true",
                                  "x509Certificates.value gt \"x\"", 'name gt "x"', 'meta eq "x"',
                                  'meta.created co "2011"', 'meta.created eq "yesterday"', "active eq 1",
                                  'emails[value eq "x"].display[type eq "y"]'])
def test_invalid_combinations(text: str) -> None:
    with pytest.raises(InvalidFilterError):
        validate(parse_filter(text), user_type())


def test_invalid_combination_raises_regardless_of_data() -> None:
    with pytest.raises(InvalidFilterError):
        m('nickName eq "x" and active gt true')


def test_datetimes_compare_as_instants() -> None:
    # INTERN.created is 02:42:34.25Z
    assert m('meta.created eq "2011-05-13T02:42:34.25Z"', INTERN)
    assert m('meta.created eq "2011-05-13T04:42:34.250+02:00"', INTERN)
    assert m('meta.created gt "2011-05-13T02:42:34Z"', INTERN)
    assert m('meta.created lt "2011-05-13T02:42:34.2500001Z"', INTERN) is False
    assert m('meta.created lt "2011-05-13T04:42:34+02:01"', INTERN) is False
    assert m('meta.created lt "2011-05-13T04:42:35+02:00"', INTERN)
    assert m('meta.lastModified gt "2011-05-13T04:42:35.4999999Z"', INTERN)


def test_unknown_attributes_match_nothing() -> None:
    # RFC 7643 §2.5: an attribute the schema doesn't define has no value on any resource.
    assert not m('foo eq "x"') and not m("foo pr") and not m('name.foo eq "x"')
    assert not m('urn:example:unknown:1.0:User:x eq "y"')
    assert not m('emails[foo eq "x"]')
    assert m('foo ne "x"') and m("not (foo pr)")


def test_password_is_never_matchable() -> None:
    res = {**BJENSEN, "password": "secret"}
    assert not m('password sw "s"', res) and not m("password pr", res)


def test_attribute_names_case_insensitive() -> None:
    assert m('USERNAME eq "bjensen@example.com"')
    assert m('NAME.FAMILYNAME co "o\'malley"')
    assert m(f'{ENT.upper()}:EMPLOYEENUMBER eq "701984"')
    assert m('EMAILS[TYPE eq "work"]')


def test_extension_attributes() -> None:
    assert m(f'{ENT}:employeeNumber eq "701984"')
    assert m(f'{ENT}:employeeNumber eq 701984')  # unquoted number against a string attribute
    assert m(f'{ENT}:manager.value eq "26118915"')
    assert m(f'{ENT}:manager.displayName sw "john"')
    assert not m(f'{ENT}:employeeNumber pr', INTERN)


def test_value_path_forms() -> None:
    assert m('emails[type eq "work"].value eq "bjensen@example.com"')
    assert not m('emails[type eq "home"].value eq "bjensen@example.com"')
    assert m('emails[not (type eq "work")]')
    assert m('name[givenName eq "barbara"]') and not m('name[not (givenName pr)]')
    assert not m('name[not (givenName pr)]', INTERN)  # no name object at all
    assert m('meta[created lt "2011-01-01T00:00:00Z"]')


def test_schemas_filter() -> None:
    assert m(f'schemas eq "{USER_SCHEMA}"', INTERN)
    assert not m(f'schemas eq "{ENT}"', INTERN)
    assert m('schemas ew ":User"')


def test_groups_resource() -> None:
    group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Tour Guides",
             "members": [{"value": "2819c223", "type": "User", "display": "Babs"}], "meta": {"resourceType": "Group"}}
    gt = group_type()
    assert matches(parse_filter('displayName eq "tour guides"'), group, gt)
    assert matches(parse_filter('members[value eq "2819c223" and type eq "user"]'), group, gt)
    assert matches(parse_filter('members eq "2819c223"'), group, gt)
    assert not matches(parse_filter('members.value eq "2819C223"'), group, gt)
    assert matches(parse_filter('meta.resourceType eq "Group"'), group, gt)


def test_matches_value_for_patch_engine() -> None:
    emails = user_type().resolve("emails")
    assert emails is not None
    node = parse_filter('type eq "work" and primary eq true')
    assert matches_value(node, {"type": "Work", "primary": True, "value": "x"}, emails.attribute)
    assert not matches_value(node, {"type": "home", "primary": True}, emails.attribute)
