"""The change feed's commands: ``scim-gateway events`` and ``scim-gateway webhooks ...`` (twins of the API)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Awaitable, Callable

from gateway.events import endpoints, feed
from gateway.events.outbox import EVENT_TYPES
from gateway.identity.management import AdminError, page_limit, parse
from gateway.settings import Settings
from gateway.store.base import Store

Command = Callable[[argparse.Namespace, Settings, Store], Awaitable[int]]


def _fail(args: argparse.Namespace, exc: AdminError) -> int:
    if getattr(args, "json", False):
        print(json.dumps(exc.to_body()))
    print(f"error: {exc.detail}", file=sys.stderr)
    return 1


def _line(e: dict[str, Any]) -> str:
    d = e["data"]
    subject = d.get("userName") or d.get("displayName") or (f"{d.get('member_id')} in {d.get('group_id')}"
                                                             if "group_id" in d else d.get("id"))
    return f"{e['sequence']}\t{e['occurred_at']}\t{e['type']}\t{e['source']}\t{subject}"


async def _events(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    cursor: str | None = args.after
    try:
        types = feed.parse_types(args.type)
        limit = feed.parse_limit(args.limit)
        while True:
            page = await feed.read_events(store, args.tenant_id, after=cursor, limit=limit, types=types)
            for e in page["data"]:
                print(json.dumps(e) if args.json else _line(e), flush=True)
            cursor = page["next_cursor"]
            if not args.follow:
                print(f"next cursor: {cursor}", file=sys.stderr)
                return 0
            if len(page["data"]) < limit:
                await asyncio.sleep(args.interval)
    except AdminError as exc:
        return _fail(args, exc)
    except (KeyboardInterrupt, asyncio.CancelledError):  # --follow ends with Ctrl-C
        print(f"next cursor: {cursor}", file=sys.stderr)
        return 0


def _hook_text(w: dict[str, Any]) -> str:
    state = "enabled" if w["enabled"] else "disabled"
    flag = ", failing" if w["failing"] else ""
    events = "all events" if w["all_events"] else ",".join(w["events"])
    return f"{w['id']}\t{w['url']}\t{state}{flag}\t{events}\t{w['description']}"


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload) if args.json else text)


Action = Callable[[argparse.Namespace, Store], Awaitable[tuple[Any, str]]]


def _command(action: Action) -> Command:
    """A command that runs ``action`` -> (payload, text) and reports an AdminError like the admin API does."""

    async def run(args: argparse.Namespace, settings: Settings, store: Store) -> int:
        try:
            payload, text = await action(args, store)
        except AdminError as exc:
            return _fail(args, exc)
        _print(args, payload, text)
        return 0

    return run


async def _wh_create(args: argparse.Namespace, store: Store) -> tuple[Any, str]:
    raw: dict[str, Any] = {"url": args.url, "description": args.description or ""}
    if args.event:
        raw["events"] = args.event
    w = await endpoints.create_webhook(store, args.tenant_id, parse(endpoints.WebhookCreate, raw))
    return w, (f"created webhook {w['id']} -> {w['url']}\nsigning secret: {w['secret']}\n"
               "This is the only time the secret is shown: copy it now.")


async def _wh_list(args: argparse.Namespace, store: Store) -> tuple[Any, str]:
    hooks = await endpoints.list_webhooks(store, args.tenant_id)
    return hooks, "\n".join(_hook_text(w) for w in hooks) or "no webhooks"


async def _wh_show(args: argparse.Namespace, store: Store) -> tuple[Any, str]:
    w = await endpoints.get_webhook(store, args.tenant_id, args.webhook_id)
    return w, _hook_text(w)


async def _wh_update(args: argparse.Namespace, store: Store) -> tuple[Any, str]:
    raw: dict[str, Any] = {}
    if args.url is not None:
        raw["url"] = args.url
    if args.all_events:
        raw["events"] = None
    elif args.event:
        raw["events"] = args.event
    if args.enabled is not None:
        raw["enabled"] = args.enabled == "on"
    if args.description is not None:
        raw["description"] = args.description
    if not raw:
        raise AdminError(400, "validation_error", "nothing to update: give at least one option")
    w = await endpoints.update_webhook(store, args.tenant_id, args.webhook_id, parse(endpoints.WebhookUpdate, raw))
    return w, _hook_text(w)


async def _wh_delete(args: argparse.Namespace, store: Store) -> tuple[Any, str]:
    await endpoints.delete_webhook(store, args.tenant_id, args.webhook_id)
    return {"id": args.webhook_id, "deleted": True}, f"deleted webhook {args.webhook_id}"


async def _wh_rotate(args: argparse.Namespace, store: Store) -> tuple[Any, str]:
    w = await endpoints.rotate_secret(store, args.tenant_id, args.webhook_id)
    return w, f"new signing secret for {w['id']}: {w['secret']}\nThe old secret no longer signs deliveries."


async def _wh_deliveries(args: argparse.Namespace, store: Store) -> tuple[Any, str]:
    page = await endpoints.list_deliveries(store, args.tenant_id, args.webhook_id, status=args.status,
                                           limit=page_limit(args.limit), cursor=args.cursor)
    lines = [f"{d['id']}\t{d['sequence']}\t{d['event_type']}\t{d['status']}\tattempts={d['attempts']}\t"
             f"last_error={d['last_error'] or '-'}\tnext={d['next_attempt_at'] or '-'}" for d in page["data"]]
    if page["next_cursor"]:
        lines.append(f"more: --cursor {page['next_cursor']}")
    return page, "\n".join(lines) or "no deliveries"


async def _wh_retry(args: argparse.Namespace, store: Store) -> tuple[Any, str]:
    d = await endpoints.retry_delivery(store, args.tenant_id, args.webhook_id, args.delivery_id)
    return d, f"delivery {d['id']} will be attempted again now"


def add_commands(sub: Any) -> None:
    """Add ``events`` and ``webhooks`` to the ``scim-gateway`` parser."""
    e = sub.add_parser("events", help="read a tenant's change feed (oldest first)")
    e.add_argument("tenant_id")
    e.add_argument("--after", help="a cursor: only events after it (default: the oldest kept)")
    e.add_argument("--type", help=f"comma-separated event types ({', '.join(EVENT_TYPES)})")
    e.add_argument("--limit", type=int, default=feed.DEFAULT_LIMIT, help=f"events per page, 1..{feed.MAX_LIMIT}")
    e.add_argument("--follow", action="store_true", help="keep streaming new events as they commit")
    e.add_argument("--interval", type=float, default=1.0, help="--follow: seconds between polls when caught up")
    e.add_argument("--json", action="store_true", help="one JSON object per line")

    w = sub.add_parser("webhooks", help="manage webhook endpoints").add_subparsers(dest="action", required=True)
    c = w.add_parser("create")
    c.add_argument("tenant_id")
    c.add_argument("--url", required=True)
    c.add_argument("--event", action="append", help="an event type to send (repeatable; default: all)")
    c.add_argument("--description")
    for name in ("list",):
        p = w.add_parser(name)
        p.add_argument("tenant_id")
    for name in ("show", "delete", "rotate-secret"):
        p = w.add_parser(name)
        p.add_argument("tenant_id")
        p.add_argument("webhook_id")
    u = w.add_parser("update")
    u.add_argument("tenant_id")
    u.add_argument("webhook_id")
    u.add_argument("--url")
    u.add_argument("--event", action="append", help="the event types to send (repeatable; replaces the list)")
    u.add_argument("--all-events", action="store_true", help="send every event type")
    u.add_argument("--enabled", choices=["on", "off"])
    u.add_argument("--description")
    d = w.add_parser("deliveries", help="delivery attempts, newest first")
    d.add_argument("tenant_id")
    d.add_argument("webhook_id")
    d.add_argument("--status", choices=list(endpoints.DELIVERY_STATUSES))
    d.add_argument("--limit", type=int, default=50)
    d.add_argument("--cursor")
    r = w.add_parser("retry", help="attempt a delivery again now")
    r.add_argument("tenant_id")
    r.add_argument("webhook_id")
    r.add_argument("delivery_id")
    for parser in (c, u, d, r, *(w.choices[n] for n in ("list", "show", "delete", "rotate-secret"))):
        parser.add_argument("--json", action="store_true")


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("events", None): _events,
    ("webhooks", "create"): _command(_wh_create),
    ("webhooks", "list"): _command(_wh_list),
    ("webhooks", "show"): _command(_wh_show),
    ("webhooks", "update"): _command(_wh_update),
    ("webhooks", "delete"): _command(_wh_delete),
    ("webhooks", "rotate-secret"): _command(_wh_rotate),
    ("webhooks", "deliveries"): _command(_wh_deliveries),
    ("webhooks", "retry"): _command(_wh_retry),
}
