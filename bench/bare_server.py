"""The ceiling: a bare aiohttp app answering with the same JSON our gateway returns, after a bearer check.

No database, no routing beyond three patterns: GET .../Users/{id} returns a canned user document,
GET .../Users (any query) a canned one-result ListResponse of it, and POST .../Users reads and parses
the body and answers 201 with the canned document; each checks the bearer token against a constant
first (like the issue's ceiling) and serialises with orjson per request exactly like the gateway's
``scim_response``. It runs on the same event loop implementation as the gateway (``--loop uvloop``
when the gateway is measured on uvloop). Run by ``bench/run.py``:

    python bench/bare_server.py --port 18200 --doc user.json --token T
"""

from __future__ import annotations

import argparse
import hmac
import json

import orjson
from aiohttp import web

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def make_app(doc: dict, token: str) -> web.Application:
    listing = {"schemas": [LIST_SCHEMA], "totalResults": 1, "itemsPerPage": 1, "startIndex": 1, "Resources": [doc]}
    expected = f"Bearer {token}".encode()

    def check(request: web.Request) -> None:
        if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
            raise web.HTTPUnauthorized()

    async def get_user(request: web.Request) -> web.Response:
        check(request)
        return web.Response(body=orjson.dumps(doc), content_type="application/scim+json", charset="utf-8")

    async def list_users(request: web.Request) -> web.Response:
        check(request)
        return web.Response(body=orjson.dumps(listing), content_type="application/scim+json", charset="utf-8")

    async def create_user(request: web.Request) -> web.Response:
        check(request)
        orjson.loads(await request.read())
        return web.Response(status=201, body=orjson.dumps(doc), content_type="application/scim+json", charset="utf-8")

    app = web.Application()
    app.router.add_get("/scim/v2/{tenant_id}/Users/{id}", get_user)
    app.router.add_get("/scim/v2/{tenant_id}/Users", list_users)
    app.router.add_post("/scim/v2/{tenant_id}/Users", create_user)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--doc", required=True, help="JSON file holding the user document to return")
    p.add_argument("--token", required=True, help="the bearer token to accept")
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = p.parse_args()
    with open(args.doc) as f:
        doc = json.load(f)
    kwargs = {}
    if args.loop == "uvloop":
        import uvloop

        kwargs["loop"] = uvloop.new_event_loop()
    web.run_app(make_app(doc, args.token), host=args.host, port=args.port, print=None, access_log=None, **kwargs)


if __name__ == "__main__":
    main()
