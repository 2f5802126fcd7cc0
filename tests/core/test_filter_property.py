"""Property: for random users and random filters, the SQL result set equals the reference evaluator's.

Runs against SQLite always, and PostgreSQL when SCIM_GATEWAY_TEST_POSTGRES is set. Kept small enough
to finish well under a minute on two cores.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.errors import InvalidFilterError
from gateway.core.filter import matches, parse_filter
from gateway.core.schema import ENTERPRISE_USER_SCHEMA, user_type
from gateway.core.sqlfilter import timestamp_text

ENT = ENTERPRISE_USER_SCHEMA

# Mixed case, some non-ASCII with simple (1:1) case mappings, and SQL/LIKE metacharacters. Characters
# whose lowercase form is longer than one code point (U+0130) or context-dependent (final sigma) are
# left out: PostgreSQL's lower() and Python's str.lower() legitimately differ on them.
ALPHABET = "aAbBzZ09 éÉäÄøØßçÇ%_!'\\-.@"
text = st.text(alphabet=ALPHABET, min_size=0, max_size=6)
word = st.sampled_from(["work", "Work", "home", "other", "Émile", "x%y", "a_b", "", "7", "10"])
value_str = st.one_of(text, word)
base_time = datetime(2011, 5, 13, 4, 42, 34, tzinfo=timezone.utc)
times = st.integers(min_value=-3, max_value=3).map(lambda n: base_time + timedelta(seconds=n, microseconds=250000 * (n % 2)))


@st.composite
def multi(draw: st.DrawFn, with_primary: bool = True) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        item: dict[str, Any] = {}
        if draw(st.booleans()):
            item["value"] = draw(value_str)
        if draw(st.booleans()):
            item["type"] = draw(st.sampled_from(["work", "Work", "home", "other"]))
        if with_primary and draw(st.booleans()):
            item["primary"] = draw(st.booleans())
        out.append(item)
    return out


@st.composite
def user(draw: st.DrawFn, n: int) -> tuple[dict[str, Any], datetime, datetime, int]:
    data: dict[str, Any] = {"userName": f"{draw(text)}#{n}"}  # unique per tenant
    if draw(st.booleans()):
        data["name"] = {k: draw(value_str) for k in draw(st.sets(st.sampled_from(["familyName", "givenName"])))}
    for attr in ("title", "displayName", "externalId", "userType"):
        if draw(st.booleans()):
            data[attr] = draw(value_str)
    data["active"] = draw(st.booleans())
    if draw(st.booleans()):
        data["emails"] = draw(multi())
    if draw(st.booleans()):
        data["roles"] = draw(multi())
    if draw(st.booleans()):
        ext = {k: draw(value_str) for k in draw(st.sets(st.sampled_from(["employeeNumber", "department"])))}
        data[ENT] = ext
    created = draw(times)
    modified = created + timedelta(seconds=draw(st.integers(0, 2)))
    return data, created, modified, draw(st.integers(1, 12))


STRING_PATHS = ["userName", "name.familyName", "name.givenName", "title", "displayName", "externalId", "userType",
                "emails.value", "emails.type", "emails", "roles.value", "roles.type", f"{ENT}:employeeNumber",
                f"{ENT}:department", "id", "meta.version"]
PRESENT_PATHS = STRING_PATHS + ["name", "emails", "roles", "active", "emails.primary", f"{ENT}:manager", "nickName"]


def q(s: str) -> str:
    return json.dumps(s, ensure_ascii=bool(len(s) % 2))  # exercise both escaped and raw non-ASCII


@st.composite
def comparison(draw: st.DrawFn, inner: bool = False) -> str:
    if inner:
        kind = draw(st.sampled_from(["str", "str", "bool", "pr"]))
        if kind == "pr":
            return f'{draw(st.sampled_from(["value", "type", "primary", "display"]))} pr'
        if kind == "bool":
            return f'primary {draw(st.sampled_from(["eq", "ne"]))} {draw(st.sampled_from(["true", "false"]))}'
        return f'{draw(st.sampled_from(["value", "type"]))} {draw(st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]))} {q(draw(value_str))}'
    kind = draw(st.sampled_from(["str", "str", "str", "pr", "bool", "time", "null", "unquoted"]))
    if kind == "pr":
        return f"{draw(st.sampled_from(PRESENT_PATHS))} pr"
    if kind == "bool":
        path = draw(st.sampled_from(["active", "emails.primary", "roles.primary"]))
        return f'{path} {draw(st.sampled_from(["eq", "ne"]))} {draw(st.sampled_from(["true", "false", chr(34) + "TRUE" + chr(34)]))}'
    if kind == "time":
        path = draw(st.sampled_from(["meta.created", "meta.lastModified"]))
        t = draw(times) + timedelta(microseconds=draw(st.sampled_from([0, 1, 250000])))
        s = t.strftime("%Y-%m-%dT%H:%M:%S") + draw(st.sampled_from(["Z", ".25Z", "+00:00", ".250000+02:00"]))
        return f'{path} {draw(st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]))} "{s}"'
    if kind == "null":
        return f'{draw(st.sampled_from(STRING_PATHS))} {draw(st.sampled_from(["eq", "ne"]))} null'
    path = draw(st.sampled_from(STRING_PATHS))
    op = draw(st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]))
    if kind == "unquoted":
        return f"{path} {op} {draw(st.sampled_from(['7', '10', 'work', 'Émile', 'true']))}"
    return f"{path} {op} {q(draw(value_str))}"


def inner_filter() -> st.SearchStrategy[str]:
    return st.recursive(
        comparison(inner=True),
        lambda c: st.one_of(
            st.tuples(c, st.sampled_from(["and", "or"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            c.map(lambda x: f"not ({x})"),
        ),
        max_leaves=3,
    )


@st.composite
def value_path(draw: st.DrawFn) -> str:
    attr = draw(st.sampled_from(["emails", "roles"]))
    inner = draw(inner_filter())
    if draw(st.booleans()):
        return f"{attr}[{inner}]"
    return f'{attr}[{inner}].value {draw(st.sampled_from(["eq", "co", "sw"]))} {q(draw(value_str))}'


filters = st.recursive(
    st.one_of(comparison(), comparison(), value_path()),
    lambda f: st.one_of(
        st.tuples(f, st.sampled_from(["and", "or", "AND", "Or"]), f).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(f, f, f).map(lambda t: f"{t[0]} or {t[1]} and {t[2]}"),
        f.map(lambda x: f"not ({x})"),
    ),
    max_leaves=5,
)


def run_property(backend: Any, users: list[tuple[dict[str, Any], datetime, datetime, int]],
                 filter_texts: list[str]) -> None:
    backend.clear()
    resources = {}
    for i, (data, created, modified, version) in enumerate(users):
        uid = f"u{i}"
        c, m = timestamp_text(created), timestamp_text(modified)
        backend.insert_user(uid, data, c, m, version)
        resources[uid] = backend.render_user(data, uid, c, m, version)
    rtype = user_type()
    for text in filter_texts:
        node = parse_filter(text)
        try:
            expected = {uid for uid, res in resources.items() if matches(node, res, rtype)}
        except InvalidFilterError:
            with pytest.raises(InvalidFilterError):
                backend.query(text)
            continue
        got = backend.query(text)
        assert got == expected, f"{text!r}: SQL {sorted(got)} != reference {sorted(expected)}\n{resources}"


users_strategy = st.integers(1, 6).flatmap(lambda n: st.tuples(*[user(i) for i in range(n)]).map(list))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                             HealthCheck.too_slow])


@SETTINGS
@given(users=users_strategy, filter_texts=st.lists(filters, min_size=1, max_size=8))
def test_sqlite_matches_reference(sqlite_module_backend: Any, users: Any, filter_texts: list[str]) -> None:
    run_property(sqlite_module_backend, users, filter_texts)


@pytest.mark.postgres
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(users=users_strategy, filter_texts=st.lists(filters, min_size=1, max_size=8))
def test_postgres_matches_reference(pg_backend: Any, users: Any, filter_texts: list[str]) -> None:
    run_property(pg_backend, users, filter_texts)
