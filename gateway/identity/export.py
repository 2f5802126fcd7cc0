"""``activity export``: a tenant's recorded SCIM exchanges written as replayable sample files.

Input: the tenant's ``scim_read`` events (written when "Log successful events (debug)" is on, with
the request and the response) and ``scim_error`` events, already redacted when they were recorded.
Output, in ``out``: ``samples/NNN_<method>_<resource>_<status>.json`` in exactly the format the test
kit's replayer reads (``gateway.testing.Replay``: ``request``, ``expected``, ``capture``), and
``manifest.json`` naming where they came from.

So a replay on a fresh tenant works, ids the gateway assigned become placeholders: the response
to the create that made a resource ``capture``\\s its id (``{user1_id}``) and every later mention is
rewritten to the placeholder. Expectations keep what a replay can reproduce (status, ``scimType``,
the resource's attributes) and drop what it cannot (``meta``, ``$ref`` URLs, error ``detail`` text).

With ``pseudonymise``, identifiers and personal data (userName, names, emails, phone numbers,
addresses, externalId, display names, ids of resources created outside the window, filter values)
are replaced by fakes derived with a per-export secret: the same input gives the same fake in
every file (compared case-insensitively, case shape kept), so correlations survive and a replay
still passes, but the fakes cannot be reversed by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from gateway.clock import format_time, now
from gateway.identity.activity import ERROR, READ
from gateway.store.base import EventRow, Store

FORMAT = "scim-gateway samples 1"
_PAGE = 500
_PLACEHOLDER = re.compile(r"^\{\w+\}$")
# attributes whose values identify a person or an account (RFC 7643 §4.1, §4.2, §4.3 names, lower-case)
_PERSONAL = frozenset({
    "username", "externalid", "displayname", "nickname", "name", "formatted", "familyname", "givenname", "middlename",
    "honorificprefix", "honorificsuffix", "emails", "phonenumbers", "addresses", "streetaddress", "locality",
    "region", "postalcode", "country", "title", "employeenumber", "manager", "members", "display", "profileurl",
    "ims", "photos", "x509certificates", "groups", "entitlements", "id",
})
# keys inside personal attributes that are vocabulary, not data
_VOCABULARY = frozenset({"type", "primary", "schemas", "op", "path", "$ref", "resourcetype", "active", "roles"})
_COMPARE = re.compile(
    r'(?P<attr>[\w.:$\-]+)\s+(?P<op>eq|ne|co|sw|ew|gt|ge|lt|le)\s+(?:"(?P<q>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s"()\[\]]+))',
    re.IGNORECASE,
)
_ID_LIKE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z\-_]{11,}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_COLLECTIONS = {"users": "user", "groups": "group"}


class ExportError(ValueError):
    """A refused export (bad time, unwritable directory); the message says what to change."""


def parse_time(value: str | None, option: str) -> str | None:
    """An ISO 8601 date or time (``2026-05-01``, ``2026-05-01T10:00:00Z``) as the activity log writes times."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ExportError(f"{option}: {value!r} is not an ISO 8601 date or time (e.g. 2026-05-01T10:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_time(moment)


class Pseudonymiser:
    """Consistent fakes: one input (case-insensitively) always maps to one fake, for one secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.seen: dict[str, str] = {}

    def fake(self, value: str) -> str:
        if not value or _PLACEHOLDER.match(value) or value == "[redacted]":
            return value
        key = value.lower()
        out = self.seen.get(key)
        if out is None:
            h = hmac.new(self.secret, key.encode(), hashlib.sha256).hexdigest()
            if "@" in value:
                out = f"user-{h[:10]}@example.test"
            elif _UUID.match(value):
                out = str(uuid.UUID(h[:32]))
            elif _ID_LIKE.match(value) and any(c.isdigit() for c in value):
                out = h[: max(12, min(len(value), 32))]
            else:
                out = f"anon-{h[:8]}"
            self.seen[key] = out
        return out.upper() if value.isupper() else out

    def walk(self, value: Any, personal: bool = False) -> Any:
        """``value`` with the string leaves of personal attributes faked (PATCH ops by their ``path``)."""
        if isinstance(value, dict):
            op_path = next((v for k, v in value.items() if isinstance(k, str) and k.lower() == "path"), None)
            op_personal = isinstance(op_path, str) and _personal_path(op_path)
            out: dict[str, Any] = {}
            for k, v in value.items():
                low = k.lower() if isinstance(k, str) else ""
                last = re.split(r"[:.]", low)[-1]
                if low == "path" and isinstance(v, str):
                    out[k] = self.filter_text(v)
                elif low in _VOCABULARY or last in _VOCABULARY:
                    out[k] = v
                elif low == "value" and op_path is not None:
                    out[k] = self.walk(v, op_personal)
                elif isinstance(k, str) and (last in _PERSONAL or low in _PERSONAL or "." in k and _personal_path(k)):
                    out[k] = self.walk(v, True)
                else:
                    out[k] = self.walk(v, personal)
            return out
        if isinstance(value, list):
            return [self.walk(v, personal) for v in value]
        if isinstance(value, str) and personal:
            return self.fake(value)
        return value

    def filter_text(self, text: str) -> str:
        """Fake the compared values in a filter or a PATCH path filter, keeping vocabulary (``type eq "work"``)."""
        def sub(m: re.Match[str]) -> str:
            attr = re.split(r"[:.]", m.group("attr").lower())[-1]
            raw = m.group("q") if m.group("q") is not None else m.group("bare")
            if attr in _VOCABULARY or raw.lower() in ("true", "false", "null") or re.fullmatch(r"-?\d+(\.\d+)?", raw):
                return m.group(0)
            fake = self.fake(raw)
            value = f'"{fake}"' if m.group("q") is not None else fake
            return f"{m.group('attr')} {m.group('op')} {value}"

        return _COMPARE.sub(sub, text)


def _personal_path(path: str) -> bool:
    bare = re.sub(r"\[.*?\]", "", path).lower()
    return any(part in _PERSONAL for part in re.split(r"[:.]", bare))


@dataclass(slots=True)
class ExportResult:
    out: Path
    files: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def _query_string(query: Any) -> str:
    """The recorded query (the raw query string, or the parameters as received) as a query string."""
    if isinstance(query, dict):
        return urlencode([(str(k), str(v)) for k, v in query.items()], quote_via=quote)
    return query if isinstance(query, str) else ""


def _expectation(status: int, response: Any, scim_type: str | None) -> dict[str, Any]:
    expected: dict[str, Any] = {"status": status}
    if isinstance(response, dict):
        if status >= 400:
            keep = {k: response[k] for k in ("schemas", "scimType") if k in response}
            expected["body_contains"] = keep or None
        else:
            expected["body_contains"] = _replayable(response)
    elif status >= 400 and scim_type:
        expected["body_contains"] = {"scimType": scim_type}
    else:
        expected["body_contains"] = None
    return expected


def _replayable(value: Any) -> Any:
    """What a replay on a fresh tenant reproduces: no ``meta`` (times, versions, URLs), no ``$ref``."""
    if isinstance(value, dict):
        return {k: _replayable(v) for k, v in value.items() if k not in ("meta", "$ref")}
    if isinstance(value, list):
        return [_replayable(v) for v in value]
    return value


_TOKEN = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-]{7,}")


def _replace_ids(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value in ids:
            return "{" + ids[value] + "}"
        # inside a path, a filter or a URL: look each id-shaped token up (linear in the text)
        return _TOKEN.sub(lambda m: "{" + ids[m.group(0)] + "}" if m.group(0) in ids else m.group(0), value)
    if isinstance(value, list):
        return [_replace_ids(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _replace_ids(v, ids) for k, v in value.items()}
    return value


async def _events(store: Store, tenant_id: str, since: str | None, until: str | None, client: str | None) -> list[EventRow]:
    picked: list[EventRow] = []
    before: int | None = None
    async with store.read() as r:
        while True:
            page = await r.list_events(tenant_id, limit=_PAGE, before_seq=before)
            for e in page:
                if since is not None and e.created < since:
                    return sorted(picked, key=lambda ev: ev.seq)
                if e.type not in (READ, ERROR) or (until is not None and e.created > until):
                    continue
                if client is not None and e.data.get("client") != client:
                    continue
                picked.append(e)
            if len(page) < _PAGE:
                return sorted(picked, key=lambda ev: ev.seq)
            before = page[-1].seq


async def export_activity(
    store: Store,
    tenant_id: str,
    out: Path,
    *,
    since: str | None = None,
    until: str | None = None,
    client: str | None = None,
    pseudonymise: bool = False,
    secret: bytes | None = None,
) -> ExportResult:
    """Write the tenant's recorded exchanges under ``out`` (``samples/`` and ``manifest.json``).

    :class:`LookupError` when there is no such tenant, :class:`ExportError` when ``out`` cannot take
    the files (it must not hold samples already: an export never mixes two sources).
    """
    async with store.read() as r:
        tenant = await r.get_tenant(tenant_id)
    if tenant is None:
        raise LookupError(f"no tenant {tenant_id!r}")
    samples_dir = out / "samples"
    if samples_dir.exists() and any(samples_dir.glob("*.json")):
        raise ExportError(f"{samples_dir} already holds samples: export into an empty directory")
    events = await _events(store, tenant_id, since, until, client)
    prefix = f"/scim/v2/{tenant_id}"
    ids: dict[str, str] = {}
    counters: dict[str, int] = {}
    fakes = Pseudonymiser(secret) if pseudonymise else None
    samples: list[tuple[str, dict[str, Any]]] = []
    captures: dict[str, str] = {}
    warnings: list[str] = []
    files: list[dict[str, Any]] = []
    for n, ev in enumerate(events, 1):
        d = ev.data
        method = str(d.get("method", "GET")).upper()
        path = str(d.get("path", ""))
        path = path[len(prefix):] if path.startswith(prefix) else path
        query = _query_string(d.get("query"))
        parts = [p for p in path.split("/") if p]
        resource = parts[0].lower().lstrip(".") if parts else "root"
        status = int(d.get("status", 0))
        request_body = d.get("request")  # as received; the plugin's version, when it differs, is request_normalized
        response = d.get("response")
        name = f"{n:03d}_{method.lower()}_{re.sub(r'[^a-z0-9]+', '', resource) or 'root'}_{status}"
        if "response" not in d:
            warnings.append(f"{name}: the response was not recorded (debug logging was off): only the status is checked")
        capture: dict[str, str] = {}
        kind = _COLLECTIONS.get(resource)
        if method == "POST" and len(parts) == 1 and kind and status == 201 and isinstance(response, dict) \
                and isinstance(response.get("id"), str):
            counters[kind] = counters.get(kind, 0) + 1
            var = f"{kind}{counters[kind]}_id"
            capture[var] = "id"
            new_id = response["id"]
        else:
            new_id = None
        headers = {k: v for k, v in (d.get("headers") or {}).items() if isinstance(v, str)}
        sample: dict[str, Any] = {
            "source": f"scim-gateway activity export: tenant {tenant_id}, event {ev.seq} ({ev.type}, {ev.created})",
            "description": f"{method} {path} answered {status}" + (f" ({d['scimType']})" if d.get("scimType") else ""),
            "constructed": False,
            "request": {"method": method, "path": path + (f"?{query}" if query else ""), "headers": headers,
                        "body": request_body},
            "expected": _expectation(status, response, d.get("scimType")),
        }
        if capture:
            sample["capture"] = capture
        # ids assigned before this exchange become placeholders; the new one only after it is captured
        sample = _replace_ids(sample, ids)
        if new_id is not None:
            resp_expected = sample["expected"].get("body_contains")
            if isinstance(resp_expected, dict):
                resp_expected.pop("id", None)  # the replay's id is new: it is captured, not compared
            ids[new_id] = var
            captures[var] = f"samples/{name}.json"
        samples.append((name, sample))
        files.append({"file": f"samples/{name}.json", "event_seq": ev.seq, "type": ev.type, "created": ev.created,
                      "client": d.get("client"), "method": method, "status": status})
    if fakes is not None:
        samples = [(name, _pseudonymise_sample(s, fakes, prefix)) for name, s in samples]
    try:
        samples_dir.mkdir(parents=True, exist_ok=True)
        for name, sample in samples:
            (samples_dir / f"{name}.json").write_text(json.dumps(sample, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        manifest = {
            "format": FORMAT,
            "source": {
                "tenant_id": fakes.fake(tenant_id) if fakes else tenant_id,
                "idp": tenant.idp,
                "exported_at": now(),
                "since": since, "until": until, "client": client,
                "events": len(samples), "pseudonymised": fakes is not None,
            },
            "replay": "a folder for gateway.testing.Replay: Replay(scim_client, <this directory>).run_all(); "
                      "see docs/testing_plugins.md",
            "captures": captures,
            "files": files,
            "warnings": warnings,
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return ExportResult(out, [f["file"] for f in files], manifest)


def _pseudonymise_sample(sample: dict[str, Any], fakes: Pseudonymiser, prefix: str) -> dict[str, Any]:
    tenant_id = prefix.rsplit("/", 1)[-1]
    req = dict(sample["request"])
    path, _, query = req["path"].partition("?")
    head, *rest = [p for p in path.split("/") if p] or [""]
    rest = [p if _PLACEHOLDER.match(p) or p.startswith(".") else fakes.fake(p) for p in rest]
    path = "/" + "/".join([head, *rest]) if head else "/"
    if query:
        pairs = [(k, fakes.filter_text(v)) for k, v in parse_qsl(query, keep_blank_values=True)]
        path += "?" + urlencode(pairs, quote_via=quote)
    req["path"] = path
    req["body"] = fakes.walk(req.get("body"))
    exp = dict(sample["expected"])
    exp["body_contains"] = fakes.walk(exp.get("body_contains"))
    status = exp["status"]
    return {**sample, "source": sample["source"].replace(tenant_id, fakes.fake(tenant_id)),
            "description": f"{req['method']} {path} answered {status} (pseudonymised)", "request": req, "expected": exp}
