"""Bad input always gets a clear SCIM error (RFC 7644 §3.12), never a 500, and changes nothing.

Every test here runs on SQLite and, when ``SCIM_GATEWAY_TEST_POSTGRES`` is set, on PostgreSQL: the
two backends must give the same 4xx for the same input.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.testing import GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, ScimClient


@pytest.fixture
def gateway_app(backend_app: web.Application) -> web.Application:
    return backend_app


BAD_QUERIES = [
    {"filter": "userName eq"},
    {"filter": "(userName eq \"a\""},
    {"filter": "userName xx \"a\""},
    {"filter": "emails[type eq \"work\""},
    {"filter": "meta.created gt \"not-a-date\""},
    {"filter": "active gt true"},
    {"filter": "(" * 200 + "userName eq \"a\"" + ")" * 200},
    {"filter": "userName eq \"a\" " + "and userName eq \"a\" " * 250},  # over the 4096-character limit,
    {"startIndex": "abc"},
    {"count": "1e9x"},
    {"sortOrder": "sideways"},
    {"sortBy": "name.nope.deeper"},
    {"cursor": "!!!"},
    {"filter": 'userName eq "\\ud800"'},  # a JSON-escaped lone surrogate reached the database bind
    {"filter": 'userName eq "a\\u0000b"'},  # NUL: a 500 on PostgreSQL, stored by SQLite
    {"filter": "userName eq \"a\x00b\""},
    {"filter": 'emails[value eq "\\udfff"]'},
    {"filter": "title eq 99999999999999999999999"},
    {"filter": "title gt 1e400"},
    {"startIndex": "99999999999999999999999"},  # overflowed the SQLite integer
    {"startIndex": "-99999999999999999999999"},
    {"count": "99999999999999999999999"},
    {"filter": "(" * 30 + 'userName eq "a"' + ")" * 30},  # deeper than max_filter_depth (20)
]


@pytest.mark.parametrize("params", BAD_QUERIES)
async def test_bad_queries_are_scim_400s(scim: ScimClient, params: dict[str, str]) -> None:
    status, err, _ = await scim.get("/Users", params=params)
    assert 400 <= status < 500 and err["status"] == str(status) and err["detail"], (params, err)


BAD_PATCHES: list[Any] = [
    {"schemas": [PATCH_OP]},
    {"schemas": [PATCH_OP], "Operations": "add"},
    {"schemas": [PATCH_OP], "Operations": [1]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "launch"}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails[", "value": 1}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "nope.deeper", "value": 1}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "userName", "value": None}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "id", "value": "x"}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "emails", "value": {"value": 3}}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "remove"}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "groups", "value": [{"value": "g"}]}]},
    {"schemas": ["urn:wrong"], "Operations": [{"op": "add", "path": "title", "value": "x"}]},
    [{"op": "add"}],
    "just a string",
    {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": 'emails[value eq "\\ud800"].type', "value": "x"}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "a\u0000b"}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title\u0000", "value": "x"}]},
    {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "title", "value": "x"}] * 1001},  # max_patch_operations
]


@pytest.mark.parametrize("body", BAD_PATCHES)
async def test_bad_patches_are_scim_400s_and_change_nothing(scim: ScimClient, body: Any) -> None:
    doc = await scim.create_user("victim@example.com", title="Original")
    status, err, _ = await scim.request("PATCH", f"/Users/{doc['id']}", body)
    assert 400 <= status < 500 and err["status"] == str(status) and err["detail"], (body, err)
    status, now, _ = await scim.get(f"/Users/{doc['id']}")
    assert now["meta"]["version"] == doc["meta"]["version"] and now["title"] == "Original"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
user_keys = st.sampled_from(["userName", "name", "emails", "active", "title", "groups", "meta", "id", "schemas",
                             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "password", "roles",
                             "phoneNumbers", "addresses", "x509Certificates", "manager"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(user_keys, json_values, max_size=6), ops=st.lists(
    st.fixed_dictionaries({"op": st.sampled_from(["add", "replace", "remove", "Add"]),
                           "path": st.sampled_from(["title", "emails", "emails[type eq \"work\"].value", "name.givenName",
                                                    "roles[primary eq true]", "active", "members", "userName"]),
                           "value": json_values}), max_size=3))
async def test_random_bodies_never_500(scim: ScimClient, body: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    body.setdefault("schemas", [USER_SCHEMA])
    status, doc, _ = await scim.post("/Users", body)
    assert status < 500, (body, doc)
    if status == 201:
        status, err, _ = await scim.request("PATCH", f"/Users/{doc['id']}", {"schemas": [PATCH_OP], "Operations": ops})
        assert status < 500, (ops, err)
        await scim.delete(f"/Users/{doc['id']}")
