"""The ``scim-gateway`` command: serve, tenants, keys, scim toggle, activity, migrate."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import socket
import sys
from typing import Any, Awaitable, Callable

from gateway.settings import Settings
from gateway.store import Store, open_store

DEMO_TENANT_NAME = "Demo"


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload))
    else:
        print(text)


async def _with_store(settings: Settings, fn: Callable[[Store], Awaitable[int]]) -> int:
    store = open_store(settings.database)
    await store.open()
    try:
        return await fn(store)
    finally:
        await store.close()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


# tenants -------------------------------------------------------------------------------------
async def _tenants_create(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity.tenants import create_tenant

    t = await create_tenant(store, args.name, idp=args.idp, scim_enabled=args.scim == "on")
    payload = {"id": t.id, "name": t.name, "idp": t.idp, "scim_enabled": t.scim_enabled, "scim_url": settings.scim_url(t.id)}
    _print(args, payload, f"created tenant {t.id} ({t.name}), idp={t.idp}, scim={'on' if t.scim_enabled else 'off'}\n"
                          f"SCIM endpoint: {settings.scim_url(t.id)}")
    return 0


async def _tenants_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    async with store.read() as r:
        rows = await r.list_tenants()
    payload = [
        {"id": t.id, "name": t.name, "idp": t.idp, "scim_enabled": t.scim_enabled, "scim_url": settings.scim_url(t.id)}
        for t in rows
    ]
    lines = [f"{t['id']}\t{t['name']}\tidp={t['idp']}\tscim={'on' if t['scim_enabled'] else 'off'}" for t in payload]
    _print(args, payload, "\n".join(lines) or "no tenants")
    return 0


# keys ----------------------------------------------------------------------------------------
async def _keys_create(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity.tenants import create_api_key

    try:
        new = await create_api_key(store, args.tenant_id, args.name)
    except LookupError as exc:
        return _fail(str(exc))
    payload = {"id": new.row.id, "name": new.row.name, "key": new.key, "created": new.row.created}
    _print(args, payload, f"created key {new.row.id} ({new.row.name})\n{new.key}\n"
                          "This is the only time the key is shown: copy it now.")
    return 0


async def _keys_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    async with store.read() as r:
        rows = await r.list_api_keys(args.tenant_id)
    payload = [
        {"id": k.id, "name": k.name, "prefix": k.prefix, "created": k.created, "last_used": k.last_used, "revoked": k.revoked}
        for k in rows
    ]
    lines = [
        "\t".join([k["id"], k["name"], k["prefix"] + "…", f"last_used={k['last_used'] or '-'}"]
                  + (["revoked"] if k["revoked"] else []))
        for k in payload
    ]
    _print(args, payload, "\n".join(lines) or "no keys")
    return 0


async def _keys_revoke(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.clock import now

    async with store.write() as tx:
        done = await tx.revoke_api_key(args.tenant_id, args.key_id, now())
    if not done:
        return _fail(f"no live key {args.key_id} in tenant {args.tenant_id}")
    _print(args, {"id": args.key_id, "revoked": True}, f"revoked {args.key_id}")
    return 0


# scim toggle and activity --------------------------------------------------------------------
async def _scim_toggle(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    enabled = args.action == "enable"
    async with store.write() as tx:
        if await tx.get_tenant(args.tenant_id) is None:
            return _fail(f"no tenant {args.tenant_id}")
        await tx.update_tenant(args.tenant_id, scim_enabled=enabled)
    _print(args, {"id": args.tenant_id, "scim_enabled": enabled},
           f"SCIM provisioning {'enabled' if enabled else 'disabled'} for {args.tenant_id}")
    return 0


async def _activity(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    async with store.read() as r:
        if await r.get_tenant(args.tenant_id) is None:
            return _fail(f"no tenant {args.tenant_id}")
        events = await r.list_events(args.tenant_id, type=args.type, limit=args.limit)
    payload = [{"seq": e.seq, "type": e.type, "created": e.created, **e.data} for e in events]
    lines = [f"{e.created}\t{e.type}\t{json.dumps(e.data, sort_keys=True)}" for e in events]
    _print(args, payload, "\n".join(lines) or "no activity")
    return 0


async def _migrate(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    print(f"database is up to date ({settings.database})")
    return 0


# serve ---------------------------------------------------------------------------------------
async def _ensure_demo(settings: Settings) -> dict[str, str]:
    from gateway.identity.tenants import create_api_key, create_tenant

    store = open_store(settings.database)
    await store.open()
    try:
        async with store.read() as r:
            tenants = await r.list_tenants()
        demo = next((t for t in tenants if t.name == DEMO_TENANT_NAME), None)
        if demo is None and not tenants:
            demo = await create_tenant(store, DEMO_TENANT_NAME, idp="auto", scim_enabled=True)
        if demo is None:
            return {}
        # Keys are stored hashed, so an existing demo key cannot be shown again: mint a fresh one.
        key = await create_api_key(store, demo.id, "demo (serve --demo)")
        return {"tenant_id": demo.id, "scim_url": settings.scim_url(demo.id), "key": key.key}
    finally:
        await store.close()


async def _noop(store: Store) -> int:
    return 0


def _run_server(settings: Settings, sock: socket.socket | None) -> None:
    from aiohttp import web

    from gateway.app import create_app
    from gateway.logging import configure

    configure(json=settings.log_json, level=settings.log_level)
    app = create_app(settings)
    if sock is not None:
        web.run_app(app, sock=sock, print=None, access_log=None)
    else:
        web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)
    if args.demo:
        if not settings.admin_token:
            settings = settings.model_copy(update={"admin_token": "adm_" + secrets.token_urlsafe(32)})
            os.environ["SCIM_GATEWAY_ADMIN_TOKEN"] = settings.admin_token or ""
            print(f"Admin API token (generated for this run): {settings.admin_token}")
        demo = asyncio.run(_ensure_demo(settings))
        if demo:
            print(f"Demo tenant: {demo['tenant_id']}\nSCIM endpoint: {demo['scim_url']}\nAPI key (shown once): {demo['key']}")
            print(f"Try: curl -H 'Authorization: Bearer {demo['key']}' {demo['scim_url']}/Users")
    else:
        asyncio.run(_with_store(settings, _noop))  # opening the store applies migrations before serving
    print(f"Serving on http://{settings.host}:{settings.port} (database: {settings.database})", flush=True)
    workers = max(1, args.workers or 1)
    if workers == 1:
        _run_server(settings, None)
        return 0
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(1024)
    sock.set_inheritable(True)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_run_server, args=(settings, sock)) for _ in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scim-gateway", description="Multi-tenant SCIM 2.0 identity gateway")
    p.add_argument("--database", help="SQLite file, sqlite:///path or postgresql://... (env SCIM_GATEWAY_DATABASE)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the HTTP server")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    s.add_argument("--demo", action="store_true", help="create a demo tenant (SCIM on) and print a key")

    t = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    tc = t.add_parser("create")
    tc.add_argument("name")
    tc.add_argument("--idp", choices=["okta", "entra", "generic", "auto"], default="auto")
    tc.add_argument("--scim", choices=["on", "off"], default="off")
    tc.add_argument("--json", action="store_true")
    tl = t.add_parser("list")
    tl.add_argument("--json", action="store_true")

    k = sub.add_parser("keys", help="manage tenant API keys").add_subparsers(dest="action", required=True)
    kc = k.add_parser("create")
    kc.add_argument("tenant_id")
    kc.add_argument("--name", required=True)
    kc.add_argument("--json", action="store_true")
    kl = k.add_parser("list")
    kl.add_argument("tenant_id")
    kl.add_argument("--json", action="store_true")
    kr = k.add_parser("revoke")
    kr.add_argument("tenant_id")
    kr.add_argument("key_id")
    kr.add_argument("--json", action="store_true")

    sc = sub.add_parser("scim", help="turn SCIM provisioning on or off for a tenant")
    sc.add_argument("action", choices=["enable", "disable"])
    sc.add_argument("tenant_id")
    sc.add_argument("--json", action="store_true")

    a = sub.add_parser("activity", help="read a tenant's activity log")
    a.add_argument("tenant_id")
    a.add_argument("--type", choices=["scim_provision", "scim_deprovision", "scim_error", "scim_read"])
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--json", action="store_true")

    sub.add_parser("migrate", help="apply database migrations")
    return p


_COMMANDS: dict[tuple[str, str | None], Callable[..., Awaitable[int]]] = {
    ("tenants", "create"): _tenants_create,
    ("tenants", "list"): _tenants_list,
    ("keys", "create"): _keys_create,
    ("keys", "list"): _keys_list,
    ("keys", "revoke"): _keys_revoke,
    ("scim", "enable"): _scim_toggle,
    ("scim", "disable"): _scim_toggle,
    ("activity", None): _activity,
    ("migrate", None): _migrate,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env(database=args.database)
    if args.command == "serve":
        return _serve(args, settings)
    fn = _COMMANDS[(args.command, getattr(args, "action", None))]
    return asyncio.run(_with_store(settings, lambda store: fn(args, settings, store)))


if __name__ == "__main__":
    sys.exit(main())
