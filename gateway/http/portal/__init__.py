"""The admin portal under ``/portal``: sign-in pages rendered here, the settings screens by one script.

Rendering: the sign-in, portal-link and error pages are tiny server-rendered HTML forms (they must work
before there is a session, and a link's token must be spent by a POST, never by a GET that a mail
scanner may prefetch). Everything after sign-in is ``static/portal.js`` over the admin API under
``/api/v1`` with the session cookie, so the portal can do exactly what the API allows and nothing else.
No build step, no third-party asset, no inline script: the Content-Security-Policy says ``'self'`` only.

Routes::

    GET        /portal                  → /portal/
    GET        /portal/                 the settings app (signed in) or → /portal/login
    GET/POST   /portal/login            operator sign-in with the admin token
    GET/POST   /portal/link?token=      a portal link: confirm page, then the POST spends it
    POST       /portal/logout           ends the session server-side
    GET        /portal/session          who is signed in (JSON, for the script)
    GET        /portal/static/{file}    the script, the style sheet
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from datetime import timedelta
from importlib import resources
from typing import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.http.access import (
    AdminApiError,
    authorize,
    cookie_name,
    idle_timeout,
    same_origin,
    session_lifetime,
)
from gateway.http.appkeys import gateway_key
from gateway.identity import portal_access

log = structlog.get_logger("scim_gateway.portal")
PORTAL = "/portal"
PRUNE_EVERY_SECONDS = 600.0
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make Chrome send "Origin: null" on our own form POSTs
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_STATIC = {"portal.js": "text/javascript", "portal.css": "text/css"}

LoginLimiter = Callable[[web.Request], Awaitable[float | None]]
# Hook point for rate limiting (issue 12): when set, called before every operator sign-in attempt; a
# number is the seconds to wait (the attempt is refused with 429 and Retry-After), None lets it through.
login_limiter_key: web.AppKey[LoginLimiter] = web.AppKey("portal_login_limiter_key")


def _asset(name: str) -> bytes:
    return resources.files("gateway.http.portal").joinpath("static", name).read_bytes()


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == PORTAL or request.path.startswith(PORTAL + "/"):
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if not request.path.startswith(PORTAL + "/static/"):
            response.headers["Cache-Control"] = "no-store"


def _page(title: str, body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · SCIM gateway</title><link rel="icon" href="data:,"><link rel="stylesheet" href="{PORTAL}/static/portal.css"></head>
<body class="gate"><main class="card" aria-labelledby="page-title">
<p class="brand">SCIM gateway</p><h1 id="page-title">{html.escape(title)}</h1>
{body}
</main></body></html>"""
    return web.Response(text=doc, status=status, content_type="text/html", headers=headers)


def _notice(kind: str, text: str) -> str:
    role = "alert" if kind == "error" else "status"
    return f'<p class="notice {kind}" role="{role}">{html.escape(text)}</p>'


def _login_form(message: str = "", kind: str = "error") -> str:
    return f"""{_notice(kind, message) if message else ""}
<p>Operators sign in with the gateway's admin API token (<code>SCIM_GATEWAY_ADMIN_TOKEN</code>).
A tenant's IT admin needs no token: ask the operator for a portal link.</p>
<form method="post" action="{PORTAL}/login">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>"""


def _set_session_cookie(request: web.Request, response: web.StreamResponse, sid: str) -> None:
    secure = request.app[gateway_key].settings.secure_cookies()
    response.set_cookie(cookie_name(request), sid, path="/", httponly=True, samesite="Strict", secure=secure,
                        max_age=int(session_lifetime(request).total_seconds()))


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _signed_in(request: web.Request) -> bool:
    try:
        await authorize(request)
    except AdminApiError:
        return False
    return True


# pages ------------------------------------------------------------------------------------------
async def root(request: web.Request) -> web.StreamResponse:
    return _redirect(PORTAL + "/")


async def app_shell(request: web.Request) -> web.StreamResponse:
    if not request.cookies.get(cookie_name(request)):
        return _redirect(PORTAL + "/login")
    if not await _signed_in(request):
        return _redirect(PORTAL + "/login?expired=1")
    return web.Response(body=_asset("index.html"), content_type="text/html")


async def login_page(request: web.Request) -> web.StreamResponse:
    if request.query.get("signed_out"):
        return _page("Sign in", _login_form("You are signed out.", "info"))
    if request.query.get("expired"):
        return _page("Sign in", _login_form("Your session has ended. Sign in again, or open a new portal link."))
    return _page("Sign in", _login_form())


async def login_submit(request: web.Request) -> web.StreamResponse:
    gw = request.app[gateway_key]
    if not same_origin(request):
        return _page("Sign in", _login_form("This sign-in did not come from the portal's own page. Open the sign-in page and try again."), status=403)
    limiter = request.app.get(login_limiter_key)
    if limiter is not None:
        wait = await limiter(request)
        if wait is not None:
            return _page("Sign in", _login_form(f"Too many sign-in attempts. Try again in {int(wait) + 1} seconds."),
                         status=429, headers={"Retry-After": str(int(wait) + 1)})
    form = await request.post()
    token = form.get("token")
    if not gw.settings.admin_token:
        return _page("Sign in", _login_form("Operator sign-in is disabled: this gateway has no admin token configured (SCIM_GATEWAY_ADMIN_TOKEN)."), status=401)
    if not isinstance(token, str) or not portal_access.token_matches(token.strip(), gw.settings.admin_token):
        return _page("Sign in", _login_form("That is not the admin token. Check it and try again."), status=401)
    sid = await portal_access.start_operator_session(gw.store, idle=idle_timeout(request), absolute=session_lifetime(request))
    response = _redirect(PORTAL + "/")
    _set_session_cookie(request, response, sid)
    return response


_LINK_REFUSED = {
    "unknown": (404, "This portal link is not valid",
                "The link is incomplete or was never issued. Copy the whole link, or ask your gateway operator for a new one."),
    "used": (410, "This portal link has already been used",
             "A portal link opens the portal once. Ask your gateway operator for a new link."),
    "expired": (410, "This portal link has expired",
                "Portal links work for a few minutes only. Ask your gateway operator for a new link."),
}


def _refused(reason: str) -> web.Response:
    status, title, text = _LINK_REFUSED[reason]
    return _page(title, f'<p role="alert">{html.escape(text)}</p>', status=status)


async def link_page(request: web.Request) -> web.StreamResponse:
    gw = request.app[gateway_key]
    token = request.query.get("token", "")
    try:
        tenant_id = await portal_access.check_link(gw.store, token)
    except portal_access.LinkRefused as exc:
        return _refused(exc.reason)
    async with gw.store.read() as r:
        tenant = await r.get_tenant(tenant_id)
    name = tenant.name if tenant else tenant_id
    body = f"""<p>This link opens the SCIM provisioning settings of <strong>{html.escape(name)}</strong>.
It works once: after you continue, the link is spent and your browser holds the session.</p>
<form method="post" action="{PORTAL}/link">
<input type="hidden" name="token" value="{html.escape(token)}">
<button type="submit">Open the portal</button>
</form>"""
    return _page("Portal link", body)


async def link_submit(request: web.Request) -> web.StreamResponse:
    gw = request.app[gateway_key]
    if not same_origin(request):
        return _page("Portal link", '<p role="alert">This request did not come from the portal link page. Open the link again.</p>', status=403)
    form = await request.post()
    token = form.get("token")
    try:
        sid, _ = await portal_access.redeem_link(gw.store, token if isinstance(token, str) else "",
                                                 idle=idle_timeout(request), absolute=session_lifetime(request))
    except portal_access.LinkRefused as exc:
        return _refused(exc.reason)
    response = _redirect(PORTAL + "/")
    _set_session_cookie(request, response, sid)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    gw = request.app[gateway_key]
    if not same_origin(request):
        return _page("Sign out", '<p role="alert">Sign out from the portal\'s own page.</p>', status=403)
    sid = request.cookies.get(cookie_name(request))
    if sid:
        await portal_access.end_session(gw.store, sid)
    response = _redirect(PORTAL + "/login?signed_out=1")
    response.del_cookie(cookie_name(request), path="/")
    return response


async def session_info(request: web.Request) -> web.StreamResponse:
    try:
        principal = await authorize(request)
    except AdminApiError as exc:
        return web.json_response({"error": exc.scim_type, "detail": exc.detail}, status=exc.status)
    gw = request.app[gateway_key]
    return web.json_response({
        "operator": principal.is_operator,
        "tenant_id": principal.tenant_id,
        "idps": ["auto", *sorted(gw.plugins.idp_plugins())],
        "public_url": gw.settings.base_url(),
    })


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _STATIC:
        return web.Response(status=404, text="not found")
    return web.Response(body=_asset(name), content_type=_STATIC[name], headers={"Cache-Control": "no-cache"})


# expired links and ended sessions ---------------------------------------------------------------
prune_task_key: web.AppKey["asyncio.Task[None]"] = web.AppKey("portal_prune_task_key")


async def _prune_loop(app: web.Application) -> None:
    gw = app[gateway_key]
    idle = timedelta(minutes=gw.settings.portal_idle_minutes)
    while True:
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
        try:
            removed = await portal_access.prune(gw.store, idle=idle)
            if removed:
                log.info("portal_pruned", removed=removed)
        except Exception:  # retried next round; never fatal
            log.exception("portal_prune_failed")


async def _start_pruning(app: web.Application) -> None:
    # on_startup runs after cleanup_ctx (the store is open); on_shutdown stops it before the store closes
    app[prune_task_key] = asyncio.create_task(_prune_loop(app))


async def _stop_pruning(app: web.Application) -> None:
    task = app.get(prune_task_key)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setup_routes(app: web.Application) -> None:
    """Register the portal (called by ``create_app``)."""
    r = app.router
    r.add_get(PORTAL, root, allow_head=False)
    r.add_get(PORTAL + "/", app_shell, allow_head=False)
    r.add_get(PORTAL + "/login", login_page, allow_head=False)
    r.add_post(PORTAL + "/login", login_submit)
    r.add_get(PORTAL + "/link", link_page, allow_head=False)
    r.add_post(PORTAL + "/link", link_submit)
    r.add_post(PORTAL + "/logout", logout)
    r.add_get(PORTAL + "/session", session_info, allow_head=False)
    r.add_get(PORTAL + "/static/{name}", static, allow_head=False)
    app.on_response_prepare.append(_security_headers)
    app.on_startup.append(_start_pruning)
    app.on_shutdown.append(_stop_pruning)
