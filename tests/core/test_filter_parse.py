"""Filter and PATCH path grammar (RFC 7644 §3.4.2.2 Figure 1 with errata, §3.5.2 PATH)."""

from __future__ import annotations

import pytest

from gateway.core.errors import InvalidFilterError, InvalidPathError
from gateway.core.filter import (
    And,
    AttrPath,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    parse_filter,
    parse_patch_path,
)

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def eq(attr: str, value: object, sub: str | None = None, urn: str | None = None) -> Compare:
    return Compare(AttrPath(urn, attr, sub), "eq", value)  # type: ignore[arg-type]


def test_simple_compare() -> None:
    assert parse_filter('userName eq "bjensen"') == eq("userName", "bjensen")


def test_and_binds_tighter_than_or() -> None:
    assert parse_filter("a eq 1 or b eq 2 and c eq 3") == Or(eq("a", 1), And(eq("b", 2), eq("c", 3)))
    assert parse_filter("a eq 1 and b eq 2 or c eq 3") == Or(And(eq("a", 1), eq("b", 2)), eq("c", 3))


def test_left_associative_chains() -> None:
    assert parse_filter("a pr or b pr or c pr") == Or(
        Or(Present(AttrPath(None, "a")), Present(AttrPath(None, "b"))), Present(AttrPath(None, "c"))
    )


def test_grouping_overrides_precedence() -> None:
    assert parse_filter("(a eq 1 or b eq 2) and c eq 3") == And(Or(eq("a", 1), eq("b", 2)), eq("c", 3))


def test_not_binds_tighter_than_and() -> None:
    assert parse_filter("not (a eq 1) and b eq 2") == And(Not(eq("a", 1)), eq("b", 2))
    assert parse_filter("not(a eq 1)") == Not(eq("a", 1))  # original ABNF: no space


def test_rfc_example_with_not() -> None:
    f = parse_filter('userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")')
    assert f == And(
        Compare(AttrPath(None, "userType"), "ne", "Employee"),
        Not(Or(Compare(AttrPath(None, "emails"), "co", "example.com"),
               Compare(AttrPath(None, "emails", "value"), "co", "example.org"))),
    )


@pytest.mark.parametrize("text", ['userName EQ "x"', 'userName Eq "x"', 'NOT (userName eq "x")',
                                  'a pr AND b pr', 'a pr Or b pr', "a PR"])
def test_keywords_and_operators_case_insensitive(text: str) -> None:
    """Keywords and operators in any case parse to the same tree as their lower-case spelling."""
    lowered = text.replace("EQ", "eq").replace("Eq", "eq").replace("NOT", "not").replace("AND", "and")
    lowered = lowered.replace("Or", "or").replace("PR", "pr")
    assert lowered != text
    assert parse_filter(text) == parse_filter(lowered)
    assert isinstance(parse_filter(text), (Compare, Present, And, Or, Not))


def test_operator_is_lowercased() -> None:
    assert parse_filter('title CO "x"') == Compare(AttrPath(None, "title"), "co", "x")


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_all_operators(op: str) -> None:
    assert parse_filter(f'title {op} "x"') == Compare(AttrPath(None, "title"), op, "x")


def test_present() -> None:
    assert parse_filter("title pr") == Present(AttrPath(None, "title"))


@pytest.mark.parametrize(
    "literal,value",
    [("true", True), ("false", False), ("null", None), ("0", 0), ("42", 42), ("-7", -7),
     ("9223372036854775807", 9223372036854775807), ("3.25", 3.25), ("-0.5", -0.5), ("1e3", 1000.0),
     ("123456789.987654321", 123456789.987654321)],
)
def test_json_literals(literal: str, value: object) -> None:
    node = parse_filter(f"x eq {literal}")
    assert isinstance(node, Compare)
    assert node.value == value and type(node.value) is type(value)


@pytest.mark.parametrize("literal", ["9223372036854775808", "-9223372036854775809", "99999999999999999999999", "1e400"])
def test_out_of_range_numbers_are_invalid_filters(literal: str) -> None:
    # no database binds them (SQLite and PostgreSQL overflow differently), so the parser refuses them
    with pytest.raises(InvalidFilterError, match="out of range"):
        parse_filter(f"x eq {literal}")


@pytest.mark.parametrize("text", ['userName eq "\\ud800"', 'userName eq "a\\u0000b"', 'emails[value eq "\\udfff"]'])
def test_lone_surrogates_and_nul_in_strings_are_invalid_filters(text: str) -> None:
    with pytest.raises(InvalidFilterError):
        parse_filter(text)


def test_filter_depth_is_a_parameter() -> None:
    text = "(" * 5 + 'userName eq "a"' + ")" * 5
    assert parse_filter(text, max_depth=5)
    with pytest.raises(InvalidFilterError, match="max_filter_depth"):
        parse_filter(text, max_depth=4)


def test_unquoted_strings() -> None:
    assert parse_filter("externalId eq jyoung") == eq("externalId", "jyoung")
    assert parse_filter("userName eq john.doe@example.com") == eq("userName", "john.doe@example.com")
    assert parse_filter("x eq 12abc") == eq("x", "12abc")
    assert parse_filter("x eq True") == eq("x", "True")  # not a JSON literal
    assert parse_filter("(externalId eq jyoung)") == eq("externalId", "jyoung")


def test_string_escapes() -> None:
    assert parse_filter(r'x eq "a\"b\\c\u00e9\n"') == eq("x", 'a"b\\c\u00e9\n')
    assert parse_filter('name.familyName co "O\'Malley"') == eq("name", "O'Malley", "familyName").__class__(
        AttrPath(None, "name", "familyName"), "co", "O'Malley")


def test_sub_attribute_and_urn() -> None:
    assert parse_filter('name.familyName eq "x"') == eq("name", "x", "familyName")
    f = parse_filter('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"')
    assert f == Compare(AttrPath("urn:ietf:params:scim:schemas:core:2.0:User", "userName"), "sw", "J")
    f = parse_filter(f'{ENT}:manager.value eq "123"')
    assert f == eq("manager", "123", "value", ENT)
    assert parse_filter(f"{ENT}:employeeNumber pr") == Present(AttrPath(ENT, "employeeNumber"))


def test_ref_sub_attribute() -> None:
    assert parse_filter('members.$ref eq "x"') == eq("members", "x", "$ref")


def test_value_path() -> None:
    f = parse_filter('emails[type eq "work" and value co "@example.com"]')
    assert f == ValuePath(AttrPath(None, "emails"),
                          And(eq("type", "work"), Compare(AttrPath(None, "value"), "co", "@example.com")))


def test_value_path_combined() -> None:
    f = parse_filter('emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]')
    assert isinstance(f, Or) and isinstance(f.left, ValuePath) and isinstance(f.right, ValuePath)
    f = parse_filter('userType eq "Employee" and emails[type eq "work"]')
    assert isinstance(f, And) and isinstance(f.right, ValuePath)


def test_value_path_with_trailing_sub_attribute() -> None:
    f = parse_filter('emails[type eq "work"].value eq "x@example.com"')
    assert f == ValuePath(AttrPath(None, "emails"), And(eq("type", "work"), eq("value", "x@example.com")))
    f = parse_filter('emails[type eq "work"].value pr')
    assert f == ValuePath(AttrPath(None, "emails"), And(eq("type", "work"), Present(AttrPath(None, "value"))))


def test_value_path_with_not_inside() -> None:
    f = parse_filter('emails[not (type eq "work")]')
    assert f == ValuePath(AttrPath(None, "emails"), Not(eq("type", "work")))


def test_whitespace_tolerated() -> None:
    assert parse_filter('  userName   eq   "x"  ') == eq("userName", "x")
    assert parse_filter('(a eq 1)and(b eq 2)') == And(eq("a", 1), eq("b", 2))


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("", "empty filter"),
        ("   ", "empty filter"),
        ('userName foo "x"', "unknown operator 'foo' at position 9"),
        ('userName eq', "missing comparison value at position 11"),
        ('userName eq "abc', "unterminated string at position 12"),
        ('userName eq "x" foo', "unexpected token 'foo' at position 16"),
        ('(userName eq "x"', "expected ')'"),
        ('userName eq "x")', "unexpected token ')' at position 15"),
        ('emails[type eq "work"', "expected ']'"),
        ('userName eq "x" and', "unexpected end of filter at position 19"),
        ('eq "x"', "unexpected token '\"x\"' at position 3: expected an operator"),
        ('userName eq "\\q"', "invalid escape"),
        ('1abc eq "x"', "invalid attribute path '1abc' at position 0"),
        ('name. eq "x"', "invalid attribute path"),
        ('a.b.c eq "x"', "invalid attribute path"),
        ('urn:x eq 1', "invalid attribute path"),
        ("userName pr pr", "unexpected token 'pr' at position 12"),
        ("and", "unexpected end of filter at position 3: expected an operator"),
    ],
)
def test_errors_name_problem_and_position(text: str, fragment: str) -> None:
    with pytest.raises(InvalidFilterError) as exc:
        parse_filter(text)
    assert fragment in exc.value.detail
    assert exc.value.scim_type == "invalidFilter" and exc.value.status == 400


def test_length_limit() -> None:
    ok = "x eq " + '"' + "a" * 4000 + '"'
    parse_filter(ok)
    with pytest.raises(InvalidFilterError, match="longer than 4096"):
        parse_filter("x eq " + '"' + "a" * 4100 + '"')


def test_depth_limit() -> None:
    parse_filter("(" * 50 + "a pr" + ")" * 50)
    with pytest.raises(InvalidFilterError, match="nesting deeper than 50"):
        parse_filter("(" * 51 + "a pr" + ")" * 51)
    with pytest.raises(InvalidFilterError, match="nesting deeper than 50"):
        parse_filter("not " * 51 + "a pr")


def test_long_flat_chain_is_not_limited_by_depth() -> None:
    text = " or ".join(f"a eq {i}" for i in range(300))
    assert len(text) < 4096
    parse_filter(text)


def test_parse_is_cached() -> None:
    assert parse_filter('userName eq "cached"') is parse_filter('userName eq "cached"')


def test_non_string_rejected() -> None:
    with pytest.raises(InvalidFilterError):
        parse_filter(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ PATCH paths


@pytest.mark.parametrize(
    "text,expected",
    [
        ("userName", PatchPath(AttrPath(None, "userName"))),
        ("name.familyName", PatchPath(AttrPath(None, "name", "familyName"))),
        (f"{ENT}:manager", PatchPath(AttrPath(ENT, "manager"))),
        (f"{ENT}:manager.value", PatchPath(AttrPath(ENT, "manager", "value"))),
        ('members[value eq "2819c223"]',
         PatchPath(AttrPath(None, "members"), eq("value", "2819c223"))),
        ('emails[type eq "work"].value',
         PatchPath(AttrPath(None, "emails"), eq("type", "work"), "value")),
        ('roles[primary eq "True"].value',
         PatchPath(AttrPath(None, "roles"), eq("primary", "True"), "value")),
        ('addresses[type eq "work" and primary eq true].streetAddress',
         PatchPath(AttrPath(None, "addresses"), And(eq("type", "work"), eq("primary", True)), "streetAddress")),
        ('urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"]',
         PatchPath(AttrPath("urn:ietf:params:scim:schemas:core:2.0:User", "emails"), eq("type", "work"))),
    ],
)
def test_patch_paths(text: str, expected: PatchPath) -> None:
    assert parse_patch_path(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "name.", "emails[type eq", 'emails[type eq "work"]x', 'emails[type eq "work"].', "a b",
     'emails[type eq "work"].value eq "x"', "1abc", 'name.familyName[value eq "x"]', "urn:only"],
)
def test_bad_patch_paths(text: str) -> None:
    with pytest.raises(InvalidPathError) as exc:
        parse_patch_path(text)
    assert exc.value.scim_type == "invalidPath"
