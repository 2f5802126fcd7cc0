"""The ``scim-gateway`` command: serve, tenants, keys, scim toggle, users, roles, sso, activity, schemas, migrate.

Every admin API action has a command here, backed by the same :mod:`gateway.identity.management` code and
the same validation; ``--json`` prints what the admin API would answer.

Failures: :func:`main` is the one place that turns every error into one ``error: ...`` line on
stderr and a documented exit code (:class:`ExitCode`), plus, with ``--json``, one
``{"error": code, "detail": text}`` object on stdout. A traceback appears only with ``--debug``
(or ``SCIM_GATEWAY_DEBUG=1``). A command reports a failure by raising: :class:`CliError` (or
``_fail``), :class:`~gateway.identity.management.AdminError`, :class:`~gateway.store.StoreUnavailable`
and :class:`~gateway.settings.SettingsError` are all rendered here, anything else as an internal
error. To add a command: add its parser in :func:`build_parser` (every option with ``help=``) and
its coroutine ``fn(args, settings, store) -> int`` to ``_COMMANDS``.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import os
import secrets
import sys
import traceback
from typing import Any, Awaitable, Callable, NoReturn

from gateway.settings import Settings, SettingsError, env_name
from gateway.store import Store, StoreUnavailable, open_store

DEMO_TENANT_NAME = "Demo"


class ExitCode(enum.IntEnum):
    """The exit codes of ``scim-gateway`` (documented in docs/operations.md)."""

    OK = 0
    FAILED = 1  # the command ran and was refused: not found, invalid input, conflict
    USAGE = 2  # bad command line, or an invalid setting (the variable or flag is named)
    DATABASE = 3  # the database cannot be opened or used (URL, file, driver, server)
    LISTEN = 4  # serve cannot listen: port in use, invalid host, permission
    REJECTED = 5  # sso sign-in answered "reject" (an answer, not a failure of the command)
    INTERNAL = 70  # an unexpected error (a bug): run with --debug for the traceback
    INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """A failure to report as one line: ``code`` is the exit code, ``error`` the JSON ``error`` field."""

    def __init__(self, detail: str, code: ExitCode = ExitCode.FAILED, error: str = "error") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.error = error


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload))
    else:
        print(text)


async def _with_store(settings: Settings, fn: Callable[[Store], Awaitable[int]]) -> int:
    store = open_store(settings.database, connect_timeout=settings.database_connect_timeout)
    await store.open()
    try:
        return await fn(store)
    finally:
        await store.close()


def _fail(message: str, error: str = "error") -> NoReturn:
    """Fail the command (exit 1): ``main`` prints the line (and the JSON object with --json)."""
    raise CliError(message, ExitCode.FAILED, error)


# tenants -------------------------------------------------------------------------------------
def _admin_fail(args: argparse.Namespace, exc: Any) -> NoReturn:
    """Report an :class:`AdminError` like the admin API does: the same code and detail (JSON with --json)."""
    raise exc


def _json_arg(args: argparse.Namespace, raw: str | None, name: str) -> Any:
    """A JSON option value, or ``@path`` to read it from a file."""
    if raw is None:
        return None
    from gateway.identity.management import AdminError

    try:
        text = open(raw[1:], encoding="utf-8").read() if raw.startswith("@") else raw
    except OSError as exc:
        raise AdminError(400, "invalid_json", f"{name}: cannot read {raw[1:]!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AdminError(400, "invalid_json", f"{name} is not valid JSON: {exc.msg}") from None


def _on_off(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _tenant_text(t: dict[str, Any]) -> str:
    m = t["role_mapping"]
    r = t["activity_retention"]
    return (f"{t['id']} ({t['name']}), idp={t['idp']}, scim={'on' if t['scim_enabled'] else 'off'}, "
            f"log_successful_events={'on' if t['log_successful_events'] else 'off'}\n"
            f"SCIM endpoint: {t['scim_url']}\n"
            f"role mapping: {json.dumps(m, sort_keys=True)}\n"
            f"activity retention: max_age_days={r['max_age_days'] or 'default'}, max_events={r['max_events'] or 'default'}")


async def _tenants_create(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    try:
        raw: dict[str, Any] = {"name": args.name, "idp": args.idp, "scim_enabled": args.scim == "on"}
        if args.log_successful_events is not None:
            raw["log_successful_events"] = args.log_successful_events == "on"
        mapping = _json_arg(args, args.role_mapping, "--role-mapping")
        if mapping is not None:
            raw["role_mapping"] = mapping
        t = await management.create_tenant(store, management.parse(management.TenantCreate, raw), settings.scim_url)
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    _print(args, t, f"created tenant {t['id']} ({t['name']}), idp={t['idp']}, scim={'on' if t['scim_enabled'] else 'off'}\n"
                    f"SCIM endpoint: {t['scim_url']}")
    return 0


async def _tenants_show(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    try:
        t = await management.get_tenant(store, args.tenant_id, settings.scim_url)
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    _print(args, t, _tenant_text(t))
    return 0


async def _tenants_update(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    try:
        raw: dict[str, Any] = {}
        for key, value in (("name", args.name), ("idp", args.idp), ("scim_enabled", _on_off(args.scim)),
                           ("log_successful_events", _on_off(args.log_successful_events))):
            if value is not None:
                raw[key] = value
        mapping = _json_arg(args, args.role_mapping, "--role-mapping")
        if mapping is not None:
            raw["role_mapping"] = mapping
        if args.retention_max_age_days is not None or args.retention_max_events is not None:
            current = (await management.get_tenant(store, args.tenant_id, settings.scim_url))["activity_retention"]
            for key, value in (("max_age_days", args.retention_max_age_days), ("max_events", args.retention_max_events)):
                if value is not None:
                    current[key] = value or None  # 0 = back to the gateway default
            raw["activity_retention"] = current
        if not raw:
            raise management.AdminError(400, "validation_error", "nothing to update: give at least one option")
        t = await management.update_tenant(store, args.tenant_id, management.parse(management.TenantUpdate, raw), settings.scim_url)
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    _print(args, t, _tenant_text(t))
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
    from gateway.identity import management

    payload = await management.create_key(store, args.tenant_id, management.parse(management.ApiKeyCreate, {"name": args.name}))
    _print(args, payload, f"created key {payload['id']} ({payload['name']})\n{payload['key']}\n"
                          "This is the only time the key is shown: copy it now.")
    return 0


async def _keys_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    payload = await management.list_keys(store, args.tenant_id)
    lines = [
        "\t".join([str(k["id"]), str(k["name"]), f"{k['prefix']}…", f"last_used={k['last_used'] or '-'}"]
                  + (["revoked"] if k["revoked"] else []))
        for k in payload
    ]
    _print(args, payload, "\n".join(lines) or "no keys")
    return 0


async def _keys_revoke(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    await management.revoke_key(store, args.tenant_id, args.key_id)
    _print(args, {"id": args.key_id, "revoked": True}, f"revoked {args.key_id}")
    return 0


# scim toggle and activity --------------------------------------------------------------------
async def _scim_toggle(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    enabled = args.action == "enable"
    try:
        # Through the admin service, so turning SCIM on re-derives roles exactly as the admin API does.
        await management.update_tenant(store, args.tenant_id, management.TenantUpdate(scim_enabled=enabled), settings.scim_url)
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    _print(args, {"id": args.tenant_id, "scim_enabled": enabled},
           f"SCIM provisioning {'enabled' if enabled else 'disabled'} for {args.tenant_id}")
    return 0


async def _activity(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    try:
        page = await management.list_activity(store, args.tenant_id, type=args.type, limit=management.page_limit(args.limit),
                                         cursor=args.cursor)
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    events = page["events"]
    lines = [f"{e['created']}\t{e['type']}\t{json.dumps({k: v for k, v in e.items() if k not in ('seq', 'type', 'created')}, sort_keys=True)}"
             for e in events]
    _print(args, events, "\n".join(lines) or "no activity")
    if page["next_cursor"]:
        print(f"more: --cursor {page['next_cursor']}", file=sys.stderr)
    return 0


async def _activity_export(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from pathlib import Path

    from gateway.identity.export import ExportError, export_activity, parse_time

    try:
        since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
        result = await export_activity(store, args.tenant_id, Path(args.out), since=since, until=until,
                                       client=args.client, pseudonymise=args.pseudonymise)
    except LookupError:
        return _fail(f"no tenant {args.tenant_id}")
    except ExportError as exc:
        return _fail(str(exc))
    m = result.manifest
    _print(args, m, f"wrote {len(result.files)} sample(s) and manifest.json to {result.out}"
                    + (" (pseudonymised)" if args.pseudonymise else "")
                    + "".join(f"\nwarning: {w}" for w in m["warnings"]))
    return 0


async def _users_list(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    try:
        page = await management.list_users(store, args.tenant_id, limit=management.page_limit(args.limit), cursor=args.cursor)
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    lines = [
        f"{u['id']}\t{u['userName']}\t{u['email'] or '-'}\t{'active' if u['active'] else 'inactive'}\t"
        f"{u['provisioned_by']}\troles={','.join(u['roles']) or '-'}"
        for u in page["users"]
    ]
    if page["next_cursor"]:
        lines.append(f"more: --cursor {page['next_cursor']}")
    _print(args, page, "\n".join(lines) or "no users")
    return 0


async def _roles_set(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    try:
        user = await management.set_roles(store, args.tenant_id, args.user_id, management.parse(management.RolesUpdate, {"roles": args.roles}))
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    _print(args, user, f"{user['userName']}: roles={','.join(user['roles']) or '-'}")
    return 0


async def _sso_sign_in(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management, sso

    try:
        raw: dict[str, Any] = {"userName": args.user_name, "groups": args.group or []}
        for key, value in (("email", args.email), ("givenName", args.given_name), ("familyName", args.family_name)):
            if value is not None:
                raw[key] = value
        attributes = _json_arg(args, args.attributes, "--attributes")
        if attributes is not None:
            raw["attributes"] = attributes
        decision = await sso.sign_in(store, args.tenant_id, management.parse(sso.SignInRequest, raw))
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    b = decision.body
    text = (f"allow{' (JIT-created)' if b['jit_created'] else ''}: roles={','.join(b['roles']) or '-'} "
            f"from {b['roles_source']}" if decision.allowed else f"reject: {b['reason']}")
    _print(args, b, text)
    # A rejected sign-in is an answer, not a failure of the command: 0 for allow, 5 (REJECTED) for
    # reject, so scripts can branch on it without parsing; usage errors stay 2 and failures 1.
    return ExitCode.OK if decision.allowed else ExitCode.REJECTED


# custom schema extensions ----------------------------------------------------------------------
def _schema_line(v: dict[str, Any]) -> str:
    return (f"{v['id']} extends {v['resourceType']}{' (required)' if v['required'] else ''}: "
            f"{', '.join(a['name'] for a in v['attributes'])}")


def _text_arg(raw: str) -> str:
    """A JSON document given inline, or ``@path`` to read it from a file (validated like an API body)."""
    from gateway.identity.management import AdminError

    if not raw.startswith("@"):
        return raw
    try:
        with open(raw[1:], encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise AdminError(400, "invalid_json", f"cannot read {raw[1:]!r}: {exc.strerror}") from None


async def _schemas(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """``schemas list|show|put|delete``: the admin API's schema actions, one ``AdminError`` path for all four."""
    from gateway.identity import extensions, management

    tenant, url = args.tenant_id, settings.scim_url
    try:
        if args.action == "list":
            views = await extensions.list_schemas(store, tenant, url)
            payload: Any = {"schemas": views}
            text = "\n".join(_schema_line(v) for v in views) or "no custom schema extensions"
        elif args.action == "show":
            payload = await extensions.get_schema(store, tenant, args.urn, url)
            text = json.dumps(payload, indent=2)
        elif args.action == "put":
            status, payload = await extensions.put_schema(store, tenant, args.urn, _text_arg(args.schema), url)
            text = f"{'declared' if status == 201 else 'replaced'} {_schema_line(payload)}"
        else:
            await extensions.delete_schema(store, tenant, args.urn, force=args.force)
            payload, text = {"deleted": args.urn}, f"deleted {args.urn}"
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    _print(args, payload, text)
    return 0


# portal links ----------------------------------------------------------------------------------
async def _portal_link(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    try:
        body = management.parse(management.PortalLinkCreate, {"minutes": args.minutes})
        link = await management.create_portal_link(store, args.tenant_id, body, settings.base_url())
    except management.AdminError as exc:
        return _admin_fail(args, exc)
    _print(args, link, f"{link['url']}\nSingle use; expires {link['expires_at']}. It opens this tenant's portal "
                       "settings for whoever holds it: send it only to the tenant's IT admin.")
    return 0


async def _migrate(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.store.migrations import migration_scripts

    applied = list(store.applied_migrations)  # opening the store applied them
    version = max((v for v, _ in migration_scripts(store.dialect)), default=0)
    text = (f"applied {len(applied)} migration{'s' if len(applied) != 1 else ''} ({', '.join(map(str, applied))}); "
            f"schema version {version}" if applied else f"no migrations to apply: schema version {version} is current")
    _print(args, {"applied": applied, "version": version}, text)
    return 0


async def _tenants_delete(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.identity import management

    if not args.yes:
        raise CliError(f"deleting tenant {args.tenant_id} removes all its users, groups, keys and activity: "
                       "add --yes to confirm", ExitCode.USAGE, "confirmation_required")
    out = await management.delete_tenant(store, args.tenant_id)
    removed = out["removed"]
    summary = ", ".join(f"{n} {table}" for table, n in removed.items() if table != "tenants" and n)
    _print(args, out, f"deleted tenant {args.tenant_id}" + (f": removed {summary}" if summary else " (it held no data)"))
    return 0


# selftest --------------------------------------------------------------------------------------
async def _selftest_run(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import selftest
    from gateway.selftest.runner import Report

    report: Report
    if args.url:
        from gateway.plugin_manager import PluginHost

        token = args.token or os.environ.get("SCIM_GATEWAY_SELFTEST_TOKEN")
        if not token:
            return _fail("--url needs --token KEY (or SCIM_GATEWAY_SELFTEST_TOKEN)")
        try:
            sequence = selftest.find_sequence(PluginHost(), args.idp)
        except (selftest.UnknownIdpError, selftest.SequenceError) as exc:
            return _fail(str(exc))
        report = await selftest.run(sequence, selftest.Target(args.url, token), keep=args.keep)
    else:
        from aiohttp import web

        from gateway.app import create_app
        from gateway.http.appkeys import gateway_key

        # The tenant is served by this process on a loopback port for the length of the run, so the
        # sequence goes through the same HTTP stack, plugins and database as the IdP's requests would.
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            gw = app[gateway_key]
            try:
                sequence = selftest.find_sequence(gw.plugins, args.idp)
                report = await selftest.run_on_tenant(gw.store, sequence, f"http://127.0.0.1:{port}", args.tenant, keep=args.keep)
            except (selftest.UnknownIdpError, selftest.SequenceError, LookupError) as exc:
                return _fail(str(exc).strip('"'))
        finally:
            await runner.cleanup()
    if args.json:
        for step in report.steps:
            print(json.dumps(step.to_json()))
    else:
        print(selftest.render(report))
    return 0 if report.passed else 1


def _selftest(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.logging import configure

    if args.tenant and args.token:
        return _fail("--token goes with --url; with --tenant a temporary key is made and revoked")
    configure(json=settings.log_json, level="WARNING")  # stdout carries the report only
    return asyncio.run(_selftest_run(args, settings))


# serve ---------------------------------------------------------------------------------------
async def _ensure_demo(settings: Settings) -> dict[str, str]:
    from gateway.identity import portal_access
    from gateway.identity.tenants import create_api_key, create_tenant

    store = open_store(settings.database, connect_timeout=settings.database_connect_timeout)
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
        link = await portal_access.create_link(store, demo, 60)
        return {"tenant_id": demo.id, "scim_url": settings.scim_url(demo.id), "key": key.key,
                "portal": f"{settings.base_url()}/portal/link?token={link.token}"}
    finally:
        await store.close()


async def _noop(store: Store) -> int:
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import serve as srv
    from gateway.logging import configure

    sock = srv.bind(settings.host, settings.port)  # first: nothing is created unless we can listen
    metrics_dir = None
    try:
        if settings.port == 0:
            settings = settings.model_copy(update={"port": srv.bound_port(sock)})
        if settings.workers > 1 and settings.metrics_enabled:
            metrics_dir = srv.prepare_multiprocess_metrics()  # before anything imports prometheus_client
        configure(json=settings.log_json, level=settings.log_level)
        if args.demo:
            if not settings.admin_token:
                settings = settings.model_copy(update={"admin_token": "adm_" + secrets.token_urlsafe(32)})
                os.environ["SCIM_GATEWAY_ADMIN_TOKEN"] = settings.admin_token or ""
                print(f"Admin API token (generated for this run): {settings.admin_token}")
            demo = asyncio.run(_ensure_demo(settings))
            if demo:
                print(f"Demo tenant: {demo['tenant_id']}\nSCIM endpoint: {demo['scim_url']}\nAPI key (shown once): {demo['key']}")
                print(f"Try: curl -H 'Authorization: Bearer {demo['key']}' {demo['scim_url']}/Users")
                print(f"Portal link for the demo tenant (single use, 60 minutes): {demo['portal']}")
                print(f"Operators sign in at {settings.base_url()}/portal/login with the admin API token")
        else:
            asyncio.run(_with_store(settings, _noop))  # opening the store applies migrations before serving
        print(f"Serving on http://{settings.host}:{settings.port} (database: {_shown_database(settings.database)}, "
              f"workers: {settings.workers})", flush=True)
        if settings.workers == 1:
            srv.run_worker(settings, sock)
            return ExitCode.OK
        return srv.supervise(settings, sock, settings.workers)
    finally:
        sock.close()
        srv.remove_multiprocess_metrics(metrics_dir)


def _shown_database(url: str) -> str:
    if "://" in url and not url.startswith("sqlite:"):
        from gateway.store.postgres import safe_dsn

        return safe_dsn(url)
    return url


# the parser --------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Usage errors raise :class:`CliError` (exit 2, one line) instead of printing usage and exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)  # subcommands' parsers are this class too
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see {self.prog} --help)", ExitCode.USAGE, "usage")


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default and, for settings, the environment variable."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        setting = getattr(action, "setting", None)
        if setting is not None:
            default = Settings.model_fields[setting].default
            shown = "unset" if default is None else str(default)
            return f"{text} (default: {shown}; env {env_name(setting)})".replace("%", "%%")
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            return f"{text} (default: %(default)s)"
        return text


def _setting(parser: argparse.ArgumentParser, *flags: str, setting: str, **kw: Any) -> argparse.Action:
    """An option that overrides a :class:`Settings` field (its default and env var come from there)."""
    action = parser.add_argument(*flags, default=None, **kw)
    action.setting = setting  # type: ignore[attr-defined]
    return action


def setting_options(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, str]:
    """Setting name -> the flag that sets it (``serve --port``), across every subcommand."""
    out: dict[str, str] = {}
    for action in parser._actions:
        setting = getattr(action, "setting", None)
        if setting is not None:
            out[setting] = f"{prefix}{action.option_strings[-1]}".strip()
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update({k: v for k, v in setting_options(sub, f"{prefix}{name} ").items() if k not in out})
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scim-gateway")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="scim-gateway", description="Multi-tenant SCIM 2.0 identity gateway",
                epilog="Exit codes: 0 ok, 1 refused (not found, invalid input, conflict), 2 usage or invalid setting, "
                       "3 database unavailable, 4 cannot listen, 5 sso sign-in rejected, 70 internal error, 130 interrupted.")
    p.add_argument("--version", action="version", version=f"scim-gateway {_version()}", help="print the version and exit")
    _setting(p, "--database", setting="database", help="SQLite file, sqlite:///absolute/path or postgresql://...")
    p.add_argument("--debug", action="store_true", help="print the traceback of a failure (env SCIM_GATEWAY_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the HTTP server")
    _setting(s, "--host", setting="host", help="address to listen on")
    _setting(s, "--port", setting="port", type=int, help="TCP port to listen on (0 = any free port)")
    _setting(s, "--workers", setting="workers", type=int, help="processes sharing the port (restarted if they die)")
    s.add_argument("--demo", action="store_true", help="create a demo tenant (SCIM on) and print a key")

    t = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    tc = t.add_parser("create")
    tc.add_argument("name")
    tc.add_argument("--idp", default="auto", help="auto, or the name of an installed IdP plugin")
    tc.add_argument("--scim", choices=["on", "off"], default="off")
    tc.add_argument("--json", action="store_true")
    tc.add_argument("--log-successful-events", choices=["on", "off"])
    tc.add_argument("--role-mapping", help="role mapping as JSON, or @file.json")
    tl = t.add_parser("list")
    tl.add_argument("--json", action="store_true")
    ts = t.add_parser("show")
    ts.add_argument("tenant_id")
    ts.add_argument("--json", action="store_true")
    tu = t.add_parser("update", help="change name, idp, SCIM toggle, debug logging, role mapping, retention")
    tu.add_argument("tenant_id")
    tu.add_argument("--name")
    tu.add_argument("--idp", help="auto, or an installed IdP plugin's name")
    tu.add_argument("--scim", choices=["on", "off"])
    tu.add_argument("--log-successful-events", choices=["on", "off"])
    tu.add_argument("--role-mapping", help="role mapping as JSON, or @file.json (replaces the current one)")
    tu.add_argument("--retention-max-age-days", type=int, help="0 = gateway default")
    tu.add_argument("--retention-max-events", type=int, help="0 = gateway default")
    tu.add_argument("--json", action="store_true")
    td = t.add_parser("delete", help="delete a tenant and all its data (one transaction; its keys stop at once)")
    td.add_argument("tenant_id")
    td.add_argument("--yes", action="store_true", help="confirm: without it nothing is deleted")
    td.add_argument("--json", action="store_true")

    u = sub.add_parser("users", help="list a tenant's users").add_subparsers(dest="action", required=True)
    ul = u.add_parser("list")
    ul.add_argument("tenant_id")
    ul.add_argument("--limit", type=int, default=50)
    ul.add_argument("--cursor")
    ul.add_argument("--json", action="store_true")

    r = sub.add_parser("roles", help="set portal-managed roles").add_subparsers(dest="action", required=True)
    rs = r.add_parser("set")
    rs.add_argument("tenant_id")
    rs.add_argument("user_id")
    rs.add_argument("roles", nargs="*", help="the complete role list (none clears)")
    rs.add_argument("--json", action="store_true")

    so = sub.add_parser("sso", help="the SSO sign-in decision").add_subparsers(dest="action", required=True)
    si = so.add_parser("sign-in")
    si.add_argument("tenant_id")
    si.add_argument("--user-name", required=True)
    si.add_argument("--email")
    si.add_argument("--given-name")
    si.add_argument("--family-name")
    si.add_argument("--group", action="append", help="a group from the assertion (repeatable)")
    si.add_argument("--attributes", help="the assertion's attributes as JSON, or @file.json")
    si.add_argument("--json", action="store_true")

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
    a.add_argument("--cursor", help="resume after the last event of the previous page")
    a.add_argument("--json", action="store_true")

    sx = sub.add_parser("schemas", help="a tenant's custom schema extensions (RFC 7643 §7)").add_subparsers(
        dest="action", required=True)
    for action, text in (("list", "the tenant's declarations"), ("show", "one declaration"),
                         ("put", "declare or replace an extension"),
                         ("delete", "remove a declaration (refused while resources carry its values)")):
        c = sx.add_parser(action, help=text)
        c.add_argument("tenant_id")
        if action != "list":
            c.add_argument("urn")
        if action == "put":
            c.add_argument("schema", help="the RFC 7643 §7 schema as JSON, or @file.json")
        if action == "delete":
            c.add_argument("--force", action="store_true", help="delete even so; the values stay stored, undeclared")
        c.add_argument("--json", action="store_true")

    pl = sub.add_parser("portal-link", help="a single-use, expiring link to one tenant's portal settings")
    pl.add_argument("tenant_id")
    pl.add_argument("--minutes", type=int, default=5, help="minutes until the link expires (1-60)")
    pl.add_argument("--json", action="store_true")

    st = sub.add_parser("selftest", help="play an IdP's documented provisioning sequence against a SCIM endpoint",
                        description="Plays the IdP's provisioning sequence (from its plugin) against one of this gateway's "
                                    "tenants or any SCIM URL, reports each step, and cleans up what it created. "
                                    "Exit code 0 only when every step passes.")
    st.add_argument("--idp", required=True, help="the IdP plugin whose sequence to play (an installed plugin name, as for a tenant's --idp)")
    where = st.add_mutually_exclusive_group(required=True)
    where.add_argument("--tenant", help="a tenant of this gateway (a temporary API key is made and revoked)")
    where.add_argument("--url", help="any SCIM base URL, e.g. https://host/scim/v2/<tenant>")
    st.add_argument("--token", help="bearer token for --url (env SCIM_GATEWAY_SELFTEST_TOKEN)")
    st.add_argument("--keep", action="store_true", help="keep the users and groups the run created")
    st.add_argument("--json", action="store_true", help="one JSON object per step, one per line")

    ax = sub.add_parser("activity-export", prog="scim-gateway activity export",
                        help="(as 'activity export') write recorded exchanges as replayable sample files",
                        description="Writes the tenant's recorded scim_read and scim_error events as sample files in "
                                    "the test kit's replay format (DIR/samples/*.json) with DIR/manifest.json.")
    ax.add_argument("tenant_id")
    ax.add_argument("--since", help="ISO 8601 date or time: only exchanges at or after it")
    ax.add_argument("--until", help="ISO 8601 date or time: only exchanges at or before it")
    ax.add_argument("--client", help="only exchanges handled by this IdP plugin (its name, as the activity log shows it)")
    ax.add_argument("--pseudonymise", action="store_true",
                    help="replace identifiers and personal data by consistent fakes (same input, same fake)")
    ax.add_argument("--out", required=True, help="directory to write samples/ and manifest.json into")
    ax.add_argument("--json", action="store_true", help="print the manifest as JSON")

    m = sub.add_parser("migrate", help="apply database migrations (says which, or that none were pending)")
    m.add_argument("--json", action="store_true")
    from gateway.events.cli import add_commands

    add_commands(sub)
    _fill_help(p)
    return p


# Help for options named alike across commands; an option named otherwise needs its own help=
# (tests/ops/test_cli_failures.py checks that every option has one).
_GENERIC_HELP = {
    "--json": "print the result (or the error) as JSON on stdout",
    "tenant_id": "the tenant's id",
    "user_id": "the user's id",
    "key_id": "the API key's id",
    "name": "a descriptive name",
    "--name": "a descriptive name",
    "--scim": "SCIM provisioning on or off ('Enable SCIM provisioning')",
    "--log-successful-events": "also log successful SCIM requests as scim_read events ('Log successful events (debug)')",
    "--limit": "page size",
    "--cursor": "resume after the previous page (its next_cursor)",
    "--type": "only events of this type",
    "--user-name": "the userName the SSO assertion carries",
    "--email": "the email the SSO assertion carries",
    "--given-name": "the given name the SSO assertion carries",
    "--family-name": "the family name the SSO assertion carries",
    "action": "what to do",
    "webhook_id": "the webhook endpoint's id",
    "delivery_id": "the delivery's id",
    "--url": "the endpoint's https:// URL",
    "--description": "a note for operators",
    "--enabled": "deliver to it (on) or pause it (off)",
    "--status": "only deliveries in this state",
    "urn": "the schema extension's URN (urn:...)",
}


def _fill_help(parser: argparse.ArgumentParser) -> None:
    """Options added without help= get the generic text for their name (so no option goes undocumented)."""
    for action in parser._actions:
        if not action.help:
            for name in (*action.option_strings, action.dest):
                if name in _GENERIC_HELP:
                    action.help = _GENERIC_HELP[name]
                    break
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _fill_help(sub)


def _rewrite_activity_export(argv: list[str]) -> list[str]:
    """``activity export ...`` is the ``activity-export`` command (``activity TENANT_ID`` lists, as before)."""
    i = 0
    while i < len(argv):
        if argv[i] == "--database":
            i += 2
            continue
        if argv[i].startswith("-"):
            i += 1
            continue
        if argv[i] == "activity" and i + 1 < len(argv) and argv[i + 1] == "export":
            return [*argv[:i], "activity-export", *argv[i + 2:]]
        return argv
    return argv


_COMMANDS: dict[tuple[str, str | None], Callable[..., Awaitable[int]]] = {
    ("tenants", "create"): _tenants_create,
    ("tenants", "list"): _tenants_list,
    ("tenants", "show"): _tenants_show,
    ("tenants", "update"): _tenants_update,
    ("tenants", "delete"): _tenants_delete,
    ("users", "list"): _users_list,
    ("roles", "set"): _roles_set,
    ("sso", "sign-in"): _sso_sign_in,
    ("keys", "create"): _keys_create,
    ("keys", "list"): _keys_list,
    ("keys", "revoke"): _keys_revoke,
    ("scim", "enable"): _scim_toggle,
    ("scim", "disable"): _scim_toggle,
    ("activity", None): _activity,
    ("activity-export", None): _activity_export,
    ("portal-link", None): _portal_link,
    ("schemas", "list"): _schemas,
    ("schemas", "show"): _schemas,
    ("schemas", "put"): _schemas,
    ("schemas", "delete"): _schemas,
    ("migrate", None): _migrate,
}


def load_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Settings:
    """The environment, overridden by the command line's setting options (invalid values name their source)."""
    flags = setting_options(parser)
    overrides = {name: getattr(args, name, None) for name in flags}
    return Settings.from_env(flags=flags, **overrides)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "selftest":
        return _selftest(args, settings)
    from gateway.events.cli import COMMANDS as FEED_COMMANDS
    from gateway.logging import configure

    configure(json=settings.log_json, level=settings.log_level, cache=False)  # stderr: stdout is the answer
    fn = {**_COMMANDS, **FEED_COMMANDS}[(args.command, getattr(args, "action", None))]
    return asyncio.run(_with_store(settings, lambda store: fn(args, settings, store)))


def _classify(exc: BaseException) -> tuple[ExitCode, str, str]:
    from gateway.identity.management import AdminError
    from gateway.serve import ListenError

    if isinstance(exc, CliError):
        return exc.code, exc.error, exc.detail
    if isinstance(exc, AdminError):
        return ExitCode.FAILED, exc.code, exc.detail
    if isinstance(exc, SettingsError):
        return ExitCode.USAGE, "invalid_setting", str(exc)
    if isinstance(exc, StoreUnavailable):
        return ExitCode.DATABASE, "database_unavailable", str(exc)
    if isinstance(exc, ListenError):
        return ExitCode.LISTEN, "cannot_listen", str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, "interrupted", "interrupted"
    if type(exc).__module__.split(".")[0] in ("sqlite3", "asyncpg"):
        return ExitCode.DATABASE, "database_error", f"database error: {type(exc).__name__}: {exc}"
    return ExitCode.INTERNAL, "internal_error", f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"


def report(exc: BaseException, *, json_output: bool, debug: bool) -> int:
    """Print ``exc`` as one ``error:`` line on stderr (and one JSON object on stdout); return its exit code."""
    code, error, detail = _classify(exc)
    detail = " ".join(str(detail).split())
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if json_output:
        print(json.dumps({"error": error, "detail": detail}), flush=True)
    print(f"error: {detail}", file=sys.stderr, flush=True)
    return int(code)


def main(argv: list[str] | None = None) -> int:
    """Run one command; never raises: every failure is one line and an :class:`ExitCode`."""
    argv = _rewrite_activity_export(list(sys.argv[1:] if argv is None else argv))
    json_output = "--json" in argv
    debug = "--debug" in argv or os.environ.get("SCIM_GATEWAY_DEBUG", "").lower() in ("1", "true", "yes", "on")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(_dispatch(args, load_settings(parser, args)))
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else ExitCode.OK
    except (Exception, KeyboardInterrupt) as exc:
        return report(exc, json_output=json_output, debug=debug)


if __name__ == "__main__":
    sys.exit(main())
