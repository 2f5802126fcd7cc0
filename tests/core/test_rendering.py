"""List pages rendered from the stored text (gateway.core.rendering) equal the decoded path, on every backend.

The spliced path must give the same JSON object as decode-build-project-encode for every document it
takes, and must decline every document it cannot render (extensions, hidden attributes, lookalike
values), which the decoded path then renders.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.core.paging import ListParams
from gateway.core.rendering import Splicer
from gateway.core.schema import user_type
from gateway.core.service import ScimService
from gateway.identity.tenants import create_tenant
from gateway.store import Store

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def test_inner_of_compact_and_jsonb_text() -> None:
    s = Splicer(CORE, ("password",))
    assert s.inner(f'{{"userName":"a","schemas":["{CORE}"]}}') == '"userName":"a"'
    assert s.inner(f'{{"schemas":["{CORE}"],"userName":"a","title":"t"}}') == '"userName":"a","title":"t"'
    assert s.inner(f'{{"userName":"a","schemas":["{CORE}"],"title":"t"}}') == '"userName":"a","title":"t"'
    assert s.inner(f'{{"schemas":["{CORE}"]}}') == ""
    # PostgreSQL's jsonb text: spaces after ':' and ','
    assert s.inner(f'{{"title": "t", "schemas": ["{CORE}"], "userName": "a"}}') == '"title": "t","userName": "a"'
    assert s.inner(f'{{"userName": "a", "schemas": ["{CORE}"]}}') == '"userName": "a"'
    # declined: an extension, a second URN anywhere, a hidden attribute, no schemas member, not an object
    assert s.inner(f'{{"userName":"a","{ENTERPRISE}":{{"department":"x"}},"schemas":["{CORE}","{ENTERPRISE}"]}}') is None
    assert s.inner(f'{{"userName":"urn:x","schemas":["{CORE}"]}}') is None
    assert s.inner(f'{{"userName":"a","password":"p","schemas":["{CORE}"]}}') is None
    assert s.inner('{"userName":"a"}') is None
    assert s.inner(f'["schemas",["{CORE}"]]') is None
    # a value that spells the schemas member is escaped in the text and never matches
    assert s.inner(f'{{"title":"\\"schemas\\":[\\"{CORE}\\"]","userName":"a"}}') is None


@pytest.mark.parametrize("rid", ["2819c223-7f76-453a-919d-413861904646", 'odd "id"\\/\u00e9', "a b"])
def test_render_gives_the_document_for_plain_and_odd_ids(rid: str) -> None:
    s = Splicer(CORE, ())
    base = "https://gw.example/scim/v2/t \"x\"/Users/"
    groups = [{"value": "g1", "$ref": base + "g1", "display": 'G "1"', "type": "direct"}]
    text = s.render(f'{{"userName":"a","schemas":["{CORE}"]}}', rid, groups, "User", "2026-01-01T00:00:00Z",
                    "2026-01-02T00:00:00.5Z", Splicer.location_base(base), 7)
    assert text is not None
    assert orjson.loads(text) == {
        "schemas": [CORE], "id": rid, "userName": "a", "groups": groups,
        "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-02T00:00:00.5Z",
                 "location": base + rid, "version": 'W/"7"'},
    }
    assert list(orjson.loads(text)) == ["schemas", "id", "userName", "groups", "meta"]


USERS: list[dict[str, Any]] = [
    {"userName": "plain@example.com"},
    {"userName": "full@example.com", "name": {"givenName": "Ann", "familyName": "O'Neil \"the\" 1st"},
     "displayName": "Ann \u00e9\u4e2d\U0001f600", "emails": [{"value": "a@x.example", "type": "work", "primary": True}],
     "phoneNumbers": [{"value": "+1 555", "type": "mobile"}], "active": False, "title": "\\back\\slash",
     "externalId": "00u1", "addresses": [{"streetAddress": "1 Main\nSt", "country": "US"}]},
    {"userName": "ent@example.com", "schemas": [CORE, ENTERPRISE],
     ENTERPRISE: {"employeeNumber": "42", "department": "R&D", "manager": {"value": "m1"}}},
    {"userName": "lookalike@example.com", "title": "urn:ietf:params:scim:schemas:core:2.0:User"},
    {"userName": "spelled@example.com", "nickName": f'"schemas":["{CORE}"]'},
    {"userName": "secret@example.com", "password": "Hunter2!"},  # never stored, never shown
]


@pytest.fixture
async def service(store: Store) -> tuple[ScimService, Any]:
    tenant = await create_tenant(store, "t", scim_enabled=True)
    return ScimService(store, base_url=lambda t: f"https://gw.example/scim/v2/{t}"), tenant


async def _both(svc: ScimService, tenant: Any, params: ListParams) -> tuple[dict[str, Any], dict[str, Any]]:
    ut = user_type()
    plain = await svc.search(tenant, ut, params)
    fast = await svc.search(tenant, ut, params, encoded=True)
    return orjson.loads(orjson.dumps(plain.body)), orjson.loads(orjson.dumps(fast.body))


async def test_encoded_pages_equal_decoded_pages(service: tuple[ScimService, Any]) -> None:
    svc, tenant = service
    ut = user_type()
    ids = []
    for body in USERS:
        created = await svc.create(tenant, ut, {"schemas": [CORE], **body})
        assert created.body is not None
        ids.append(created.body["id"])
    # a PATCH moves stored attributes after "schemas"; a group membership adds "groups"
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "add", "path": "nickName", "value": "late"}]}
    await svc.patch(tenant, ut, ids[0], patch)
    gt = svc.types["Group"]
    await svc.create(tenant, gt, {"schemas": [GROUP], "displayName": 'Ops "core"',
                                  "members": [{"value": ids[0]}, {"value": ids[1]}, {"value": ids[2]}]})
    await svc.create(tenant, gt, {"schemas": [GROUP], "displayName": "Admins", "members": [{"value": ids[1]}]})

    plain, fast = await _both(svc, tenant, ListParams(count=100))
    assert plain == fast
    assert plain["totalResults"] == len(USERS)
    by_name = {r["userName"]: r for r in fast["Resources"]}
    assert "password" not in by_name["secret@example.com"]
    assert by_name["ent@example.com"]["schemas"] == [CORE, ENTERPRISE]
    assert [g["display"] for g in by_name["full@example.com"]["groups"]] == ["Admins", 'Ops "core"']
    assert by_name["plain@example.com"]["nickName"] == "late"
    # paging, a filter and cursors take the same path
    for params in (ListParams(count=2, start_index=3), ListParams(filter='userName sw "s"'),
                   ListParams(count=4, cursor=""), ListParams(filter='active eq false')):
        plain, fast = await _both(svc, tenant, params)
        assert plain == fast


async def test_encoded_pages_are_fragments_only_where_they_can_be(service: tuple[ScimService, Any]) -> None:
    svc, tenant = service
    ut = user_type()
    for body in USERS:
        await svc.create(tenant, ut, {"schemas": [CORE], **body})
    page = await svc.search(tenant, ut, ListParams(count=100), encoded=True)
    assert page.body is not None
    kinds = {}
    for r in page.body["Resources"]:
        doc = orjson.loads(orjson.dumps(r))
        kinds[doc["userName"]] = type(r).__name__
    # the plain documents are spliced; the extension and the lookalike values are decoded
    assert kinds["plain@example.com"] == kinds["full@example.com"] == "Fragment"
    assert kinds["ent@example.com"] == kinds["lookalike@example.com"] == "dict"
    # projection parameters always take the decoded path
    projected = await svc.search(tenant, ut, ListParams(count=100, attributes=["userName"]), encoded=True)
    assert projected.body is not None
    assert all(isinstance(r, dict) and set(r) == {"schemas", "id", "userName"} for r in projected.body["Resources"])
