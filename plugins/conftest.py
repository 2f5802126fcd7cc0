"""Fixtures for the built-in plugins' tests: the plugin-author kit plus a recorded-sample replayer.

Sample files (see ``plugins/okta/tests/samples/README.md``) hold ``request`` {method, path,
headers, body}, ``expected`` {status, status_alternatives, body_contains, body_absent_keys} and
``capture`` ({"user_id": "id"}: keep the response's ``id`` as ``{user_id}`` for later steps).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    from gateway.testing import ScimClient

pytest_plugins = ["gateway.testing"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def contains(actual: Any, expected: Any) -> bool:
    """Partial JSON match: dict keys must match recursively; each expected list item must match some item.

    An expected ``[]`` needs an empty list; ``status`` matches the RFC string or the integer form.
    """
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if not expected:
            return actual == []
        return all(any(contains(a, e) for a in actual) for e in expected)
    if isinstance(expected, int) and not isinstance(expected, bool) and isinstance(actual, str):
        return actual == str(expected)  # Okta's doc prints "status": 409; RFC 7644 §3.12 says "409"
    return bool(actual == expected)


class Replay:
    """Replays recorded vendor samples against a live gateway, capturing ids as the samples say."""

    def __init__(self, scim: ScimClient, folder: Path, headers: dict[str, str] | None = None) -> None:
        self.scim = scim
        self.folder = folder
        self.headers = headers or {}
        self.vars: dict[str, str] = {}

    def names(self) -> list[str]:
        return sorted(p.stem for p in (self.folder / "samples").glob("*.json"))

    def load(self, name: str) -> dict[str, Any]:
        """A sample by file stem or number prefix (``"05"``), placeholders filled from earlier captures."""
        stem = next(n for n in self.names() if n == name or n.split("_", 1)[0] == name)
        raw = json.loads((self.folder / "samples" / f"{stem}.json").read_text())
        raw["name"] = stem
        return self._fill(raw)  # type: ignore[no-any-return]

    def _fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: self.vars.get(m.group(1), m.group(0)), value)
        if isinstance(value, list):
            return [self._fill(v) for v in value]
        if isinstance(value, dict):
            return {self._fill(k): self._fill(v) for k, v in value.items()}
        return value

    async def send(self, sample: dict[str, Any] | str, *, check: bool = True) -> tuple[int, Any]:
        """Send one sample's request; with ``check``, assert its expected status and body parts."""
        s = self.load(sample) if isinstance(sample, str) else sample
        req = s["request"]
        path, _, qs = req["path"].partition("?")
        params = dict(urllib.parse.parse_qsl(qs, keep_blank_values=True)) if qs else None
        headers = {**self.headers, **(req.get("headers") or {})}
        status, body, _ = await self.scim.request(req["method"], path, req.get("body"), headers=headers, params=params)
        if check:
            self.check(s, status, body)
        for var, field in (s.get("capture") or {}).items():
            if isinstance(body, dict) and field in body:
                self.vars[var] = body[field]
            else:
                assert not check, (s["name"], status, body)
        return status, body

    def check(self, s: dict[str, Any], status: int, body: Any) -> None:
        exp = s["expected"]
        allowed = [exp["status"], *exp.get("status_alternatives", [])]
        assert status in allowed, f"{s['name']}: status {status} not in {allowed}: {body}"
        if status != 204 and exp.get("body_contains") is not None:
            assert contains(body, exp["body_contains"]), f"{s['name']}: {body} lacks {exp['body_contains']}"
        for key in exp.get("body_absent_keys", []):
            assert key not in (body or {}), f"{s['name']}: {key!r} must be absent"

    async def run_all(self, *, skip: Callable[[str], bool] = lambda name: False) -> None:
        """The whole sequence in file order. Steps ``skip`` names are still sent but not checked."""
        for name in self.names():
            await self.send(name, check=not skip(name))


@pytest.fixture
def replay(scim: ScimClient) -> Callable[..., Replay]:
    """``replay(folder, headers=None, client=None)``: a :class:`Replay` on ``scim`` or another tenant's client."""

    def make(folder: Path, headers: dict[str, str] | None = None, client: ScimClient | None = None) -> Replay:
        return Replay(client or scim, folder, headers)

    return make
