"""Play an IdP's provisioning sequence against a SCIM endpoint and report each step honestly.

Each step is sent exactly as the sequence writes it (the IdP's headers, its body, its query
string), with ``{placeholders}`` filled from a per-run token and from earlier answers. The
report says, per step, what was sent, what came back, what the IdP would do with that answer
(``accept``, ``retry``, ``quarantine``) and a verdict with the document it rests on. What the
run created is deleted at the end unless ``keep``.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.identity.activity import redact
from gateway.selftest.sequence import Sequence, Step, fill, judge, unresolved

ACCEPT, RETRY, QUARANTINE = "accept", "retry", "quarantine"
PASS, FAIL, NOT_RUN = "pass", "fail", "not_run"
_SHOWN_RESPONSE_HEADERS = ("content-type", "etag", "location", "retry-after", "www-authenticate")
_MAX_TEXT = 2000
_COLLECTIONS = {"users", "groups"}


@dataclass(slots=True)
class Target:
    """A SCIM endpoint: its base URL (``https://host/scim/v2/<tenant>``) and bearer token."""

    base_url: str
    token: str

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


@dataclass(slots=True)
class StepResult:
    index: int
    name: str
    phase: str  # sequence | cleanup
    kind: str  # idp | verify | cleanup
    result: str  # pass | fail | not_run
    reason: str
    idp_action: str | None
    idp_would: str
    doc: str
    sent: dict[str, Any] | None = None
    received: dict[str, Any] | None = None
    duration_ms: float | None = None
    expected: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.index, "name": self.name, "phase": self.phase, "kind": self.kind, "result": self.result,
            "reason": self.reason, "idp_action": self.idp_action, "idp_would": self.idp_would, "doc": self.doc,
            "sent": self.sent, "received": self.received, "expected": self.expected, "duration_ms": self.duration_ms,
        }


@dataclass(slots=True)
class Report:
    idp: str
    title: str
    target: str
    steps: list[StepResult] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.result == PASS for s in self.steps)

    def counts(self) -> dict[str, int]:
        out = {PASS: 0, FAIL: 0, NOT_RUN: 0}
        for s in self.steps:
            out[s.result] += 1
        return out

    def summary(self) -> dict[str, Any]:
        return {"idp": self.idp, "title": self.title, "target": self.target, "passed": self.passed,
                "counts": self.counts(), "kept": self.kept}

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "steps": [s.to_json() for s in self.steps]}


def _body_of(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace")
        return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _split(path: str) -> tuple[str, list[tuple[str, str]]]:
    bare, _, qs = path.partition("?")
    return bare, urllib.parse.parse_qsl(qs, keep_blank_values=True) if qs else []


class Runner:
    """One run of one sequence against one target."""

    def __init__(self, sequence: Sequence, target: Target, session: aiohttp.ClientSession, *, timeout: float = 30.0) -> None:
        self.seq = sequence
        self.target = target
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        run = secrets.token_hex(4)
        self.vars: dict[str, str] = {"run": run, "uuid": str(uuid.uuid4()), "uuid2": str(uuid.uuid4())}
        self.created: dict[tuple[str, str], str] = {}  # (collection, id) -> step that created it

    async def _send(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[dict[str, Any], dict[str, Any] | None, str | None, float]:
        bare, query = _split(path)
        shown_query = urllib.parse.urlencode(query, quote_via=urllib.parse.quote) if query else ""
        url = self.target.url(bare)
        send_headers = dict(headers)
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k in send_headers):
                send_headers["Content-Type"] = "application/scim+json"
        else:
            send_headers = {k: v for k, v in send_headers.items() if k.lower() != "content-type"}
        # the report shows what went out with secret-named fields redacted, as the activity log does
        sent = {"method": method, "url": url + (f"?{shown_query}" if shown_query else ""),
                "headers": {**send_headers, "Authorization": "Bearer [redacted]"}, "body": redact(body)}
        send_headers["Authorization"] = f"Bearer {self.target.token}"
        started = time.perf_counter()
        try:
            async with self.session.request(method, url, params=query or None, headers=send_headers, data=data,
                                            timeout=self.timeout, allow_redirects=False) as resp:
                raw = await resp.read()
                received = {
                    "status": resp.status,
                    "headers": {k.lower(): v for k, v in resp.headers.items() if k.lower() in _SHOWN_RESPONSE_HEADERS},
                    "body": redact(_body_of(raw)),
                }
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return sent, None, f"no answer: {type(exc).__name__}: {exc}".rstrip(": "), (time.perf_counter() - started) * 1000
        return sent, received, None, (time.perf_counter() - started) * 1000

    def _action(self, step: Step, received: dict[str, Any] | None) -> str:
        if received is None or received["status"] == 429 or received["status"] >= 500:
            return RETRY  # transient in every vendor's book: the IdP tries again later
        return step.on_failure

    def _would(self, action: str | None, step: Step) -> str:
        if action is None:
            return "the IdP does not send this request; the self-test adds it to check the previous change took effect"
        if action == ACCEPT:
            return step.idp_does or "accepts the answer and goes on"
        act = self.seq.actions[action]  # type: ignore[index]
        return f"{act.text} ({self.seq.citation(act)})"

    async def step(self, index: int, step: Step) -> StepResult:
        doc = self.seq.citation(step.cite)
        headers = fill({**self.seq.headers, **step.request.headers}, self.vars)
        path = fill(step.request.path, self.vars)
        body = fill(step.request.body, self.vars)
        missing = unresolved([path, body, headers]) - set(self.vars)
        if missing:
            names = ", ".join("{" + m + "}" for m in sorted(missing))
            return StepResult(index, step.name, "sequence", step.kind, NOT_RUN,
                              f"not run: it needs {names}, which no earlier step captured", None, "", doc)
        sent, received, error, ms = await self._send(step.request.method, path, headers, body)
        expected = step.expected.model_copy(update={"body_contains": fill(step.expected.body_contains, self.vars)})
        if received is None:
            reason = error or "no answer"
        else:
            reason = judge(expected, received["status"], received["body"]) or ""
            body_doc = received["body"] if isinstance(received["body"], dict) else {}
            for var, key in step.capture.items():
                if key in body_doc and isinstance(body_doc[key], (str, int)):
                    self.vars[var] = str(body_doc[key])
                elif not reason:
                    reason = f"the answer has no {key!r} to keep as {{{var}}} for later steps"
            self._track(step.request.method, path, received["status"], body_doc, step.name)
        ok = not reason
        if step.kind == "verify":
            action = None
        else:
            action = ACCEPT if ok else self._action(step, received)
        if ok and received is not None:
            reason = f"{received['status']} as expected"
        return StepResult(index, step.name, "sequence", step.kind, PASS if ok else FAIL, reason, action,
                          self._would(action, step), doc, sent, received, round(ms, 1),
                          expected.model_dump(exclude_defaults=True))

    def _track(self, method: str, path: str, status: int, body: dict[str, Any], step: str) -> None:
        parts = [p for p in _split(path)[0].split("/") if p]
        if not parts or parts[0].lower() not in _COLLECTIONS:
            return
        collection = parts[0].lower()
        if method == "POST" and len(parts) == 1 and 200 <= status < 300 and isinstance(body.get("id"), str):
            self.created[(collection, body["id"])] = step
        elif method == "DELETE" and len(parts) == 2 and status in (200, 204, 404):
            self.created.pop((collection, parts[1]), None)

    async def cleanup(self, first_index: int) -> list[StepResult]:
        out: list[StepResult] = []
        for n, ((collection, rid), made_by) in enumerate(reversed(list(self.created.items()))):
            path = f"/{collection.capitalize()}/{rid}"
            sent, received, error, ms = await self._send("DELETE", path, dict(self.seq.headers), None)
            ok = received is not None and received["status"] in (200, 204, 404)
            reason = (f"deleted what step {made_by} created" if ok else
                      error or f"status {received['status'] if received else '-'}: what step {made_by} created is still there")
            out.append(StepResult(first_index + n, f"cleanup_{collection}", "cleanup", "cleanup", PASS if ok else FAIL,
                                  reason, None, "the IdP does not send this; the self-test removes what it created",
                                  "RFC 7644, section 3.6 \"Deleting Resources\", https://www.rfc-editor.org/rfc/rfc7644#section-3.6",
                                  sent, received, round(ms, 1)))
        self.created.clear()
        return out


async def run(sequence: Sequence, target: Target, *, keep: bool = False, session: aiohttp.ClientSession | None = None,
              timeout: float = 30.0) -> Report:
    """Play ``sequence`` against ``target`` in order; clean up unless ``keep``."""
    own = session is None
    http = session or aiohttp.ClientSession()
    try:
        runner = Runner(sequence, target, http, timeout=timeout)
        report = Report(sequence.idp, sequence.title, target.base_url)
        stopped: StepResult | None = None
        for i, step in enumerate(sequence.steps, 1):
            if stopped is not None:
                report.steps.append(StepResult(
                    i, step.name, "sequence", step.kind, NOT_RUN,
                    f"not run: step {stopped.index} ({stopped.name}) failed and the IdP goes no further", None, "",
                    sequence.citation(step.cite)))
                continue
            result = await runner.step(i, step)
            report.steps.append(result)
            if result.result == FAIL and step.stop_on_failure:
                stopped = result
        if keep:
            report.kept = [f"/{c.capitalize()}/{rid}" for (c, rid) in runner.created]
        else:
            report.steps.extend(await runner.cleanup(len(sequence.steps) + 1))
        return report
    finally:
        if own:
            await http.close()


def render(report: Report) -> str:
    """The report as text: one line per step, the reason and the document under each failure."""
    lines = [f"selftest {report.idp}: {report.title}", f"target: {report.target}"]
    for s in report.steps:
        sent = s.sent or {}
        got = s.received["status"] if s.received else ("-" if s.result == NOT_RUN else "no answer")
        url = sent.get("url", "")
        rel = url[len(report.target.rstrip("/")):] if url.startswith(report.target.rstrip("/")) else url
        action = f"  IdP: {s.idp_action}" if s.idp_action else ""
        lines.append(f"{s.index:3} {s.result.upper():7} {s.name:44} {sent.get('method', ''):6} {rel} -> {got}{action}")
        if s.result == FAIL:
            lines.append(f"      {s.reason}")
            if s.idp_would:
                lines.append(f"      the IdP would: {s.idp_would}")
            lines.append(f"      doc: {s.doc}")
        elif s.result == NOT_RUN:
            lines.append(f"      {s.reason}")
    c = report.counts()
    lines.append(f"result: {'PASS' if report.passed else 'FAIL'} ({c[PASS]} passed, {c[FAIL]} failed, {c[NOT_RUN]} not run)")
    if report.kept:
        lines.append("kept (--keep): " + ", ".join(report.kept))
    return "\n".join(lines)
