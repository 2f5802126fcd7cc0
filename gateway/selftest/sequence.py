"""An IdP's provisioning sequence as data: what the self-test plays, and how a step is judged.

A sequence document (``selftest.json`` next to a plugin's recorded samples) names its sources,
the headers the IdP sends on every request, what the IdP does when an answer is not what it
expects, and the steps in order. A step's ``request`` / ``expected`` / ``capture`` have exactly
the meaning they have in a recorded sample (``gateway.testing``), plus what only a self-test
needs: the document the expectation rests on, whether the IdP stops after a failure, and
whether the step is one the IdP sends or one the self-test adds to check that a change took.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PLACEHOLDER = re.compile(r"\{(\w+)\}")


class SequenceError(ValueError):
    """A sequence document that does not follow the format; the message names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Model):
    title: str
    url: str


class Citation(_Model):
    doc: str = Field(description="a key of the sequence's ``sources``")
    section: str = ""


class Action(Citation):
    """What the IdP does with an answer it did not expect, and the document that says so."""

    text: str


class Request(_Model):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(description="relative to the SCIM base URL; may carry a query string and {placeholders}")
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class Expected(_Model):
    status: int
    status_alternatives: list[int] = Field(default_factory=list)
    body_contains: Any = None
    body_absent_keys: list[str] = Field(default_factory=list)
    body_empty_keys: list[str] = Field(default_factory=list, description="absent, null or [] (an empty multi-valued attribute)")


class Step(_Model):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    cite: Citation
    request: Request
    expected: Expected
    capture: dict[str, str] = Field(default_factory=dict)
    kind: Literal["idp", "verify"] = "idp"
    on_failure: Literal["retry", "quarantine"] = "quarantine"
    stop_on_failure: bool = False
    idp_does: str = ""
    sample: str | None = Field(None, description="the recorded sample this step plays, when there is one")
    notes: str = ""


class Sequence(_Model):
    idp: str
    title: str
    sources: dict[str, Source]
    headers: dict[str, str] = Field(default_factory=dict)
    actions: dict[Literal["retry", "quarantine"], Action]
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Sequence":
        names: set[str] = set()
        for step in self.steps:
            if step.name in names:
                raise ValueError(f"step name {step.name!r} is used twice")
            names.add(step.name)
            if step.cite.doc not in self.sources:
                raise ValueError(f"step {step.name!r} cites {step.cite.doc!r}, which is not in sources")
        for key in ("retry", "quarantine"):
            if key not in self.actions:
                raise ValueError(f"actions.{key} is required: say what the IdP does then, and cite it")
            if self.actions[key].doc not in self.sources:
                raise ValueError(f"actions.{key} cites {self.actions[key].doc!r}, which is not in sources")
        return self

    def citation(self, cite: Citation) -> str:
        src = self.sources[cite.doc]
        section = f", section \"{cite.section}\"" if cite.section else ""
        return f"{src.title}{section}, {src.url}"


def parse(document: Any) -> Sequence:
    """Validate a sequence document (a dict, or JSON text); :class:`SequenceError` names what is wrong."""
    try:
        raw = json.loads(document) if isinstance(document, (str, bytes)) else document
        return Sequence.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise SequenceError(f"the sequence is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise SequenceError(f"invalid sequence at {where}: {first['msg']}") from None


def load(package: str, name: str = "selftest.json") -> dict[str, Any]:
    """Read a sequence document shipped as package data (``load(__name__)`` from a plugin)."""
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def fill(value: Any, variables: dict[str, str]) -> Any:
    """``value`` with every ``{name}`` whose name is in ``variables`` replaced (keys and values, recursively)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [fill(v, variables) for v in value]
    if isinstance(value, dict):
        return {fill(k, variables): fill(v, variables) for k, v in value.items()}
    return value


def unresolved(value: Any) -> set[str]:
    """Placeholder names still left in ``value`` after :func:`fill`."""
    found: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            found.update(PLACEHOLDER.findall(v))
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
    return found


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
        return actual == str(expected)  # some vendor docs print "status": 409; RFC 7644 §3.12 says "409"
    return bool(actual == expected)


def judge(expected: Expected, status: int, body: Any) -> str | None:
    """Why an answer falls short of ``expected`` (one sentence), or None when it meets it.

    The same rules as the sample replayer: the status must be allowed; a body other than a 204's
    must contain ``body_contains``; ``body_absent_keys`` must be absent; ``body_empty_keys``
    absent, null or empty.
    """
    allowed = [expected.status, *expected.status_alternatives]
    if status not in allowed:
        said = body.get("detail") if isinstance(body, dict) else None
        return f"status {status}, expected {' or '.join(map(str, allowed))}" + (f"; the server said: {said}" if said else "")
    if status == 204:
        return None
    if expected.body_contains is not None and not contains(body, expected.body_contains):
        return f"the {status} body lacks {json.dumps(expected.body_contains, sort_keys=True)}"
    doc = body if isinstance(body, dict) else {}
    present = [k for k in expected.body_absent_keys if k in doc]
    if present:
        return f"the body must not carry {', '.join(present)}"
    filled = [k for k in expected.body_empty_keys if doc.get(k) not in (None, [])]
    if filled:
        return f"{', '.join(filled)} must be empty, got {json.dumps({k: doc[k] for k in filled}, sort_keys=True)}"
    return None
