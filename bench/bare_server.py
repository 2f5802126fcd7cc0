"""The ceiling: a bare aiohttp app answering with the same JSON our gateway returns, and nothing else.

No auth, no database, no routing beyond two patterns: GET .../Users/{id} returns a canned user
document and GET .../Users (any query) a canned one-result ListResponse of it, both serialised with
orjson per request exactly like the gateway's ``scim_response``. Run by ``bench/run.py``:

    python bench/bare_server.py --port 18200 --doc user.json
"""

from __future__ import annotations

import argparse
import json

import orjson
from aiohttp import web

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def make_app(doc: dict) -> web.Application:
    listing = {"schemas": [LIST_SCHEMA], "totalResults": 1, "itemsPerPage": 1, "startIndex": 1, "Resources": [doc]}

    async def get_user(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(doc), content_type="application/scim+json", charset="utf-8")

    async def list_users(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(listing), content_type="application/scim+json", charset="utf-8")

    app = web.Application()
    app.router.add_get("/scim/v2/{tenant_id}/Users/{id}", get_user)
    app.router.add_get("/scim/v2/{tenant_id}/Users", list_users)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--doc", required=True, help="JSON file holding the user document to return")
    args = p.parse_args()
    with open(args.doc) as f:
        doc = json.load(f)
    web.run_app(make_app(doc), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
