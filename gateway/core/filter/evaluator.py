"""The in-memory filter evaluator: the reference semantics the SQL compiler (:mod:`gateway.core.sqlfilter`) matches."""

from __future__ import annotations

from typing import Any

from gateway.core.filter.binder import (BAnd, BCmp, BConst, BNot, BOr, Bound, BValuePath, bind, bind_value_filter,
    parse_datetime)
from gateway.core.filter.nodes import STRING_TYPES, Node
from gateway.core.schema import Attribute, ResourceType



def _get(obj: Any, name: str) -> Any:
    """Member ``name`` of a JSON object; canonical spelling first, then case-insensitively (RFC 7643 §2.1)."""
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    low = name.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None


def is_present(attr: Attribute, value: Any) -> bool:
    """``pr`` for one value: null, "", [] and {} are unassigned (RFC 7643 §2.5); complex needs a present sub-attribute."""
    if value is None:
        return False
    if attr.multi_valued and isinstance(value, list):
        return any(_present_one(attr, v) for v in value)
    return _present_one(attr, value)


def _present_one(attr: Attribute, value: Any) -> bool:
    t = attr.type
    if t == "complex":
        return isinstance(value, dict) and any(
            _present_one(s, _get(value, s.name)) for s in attr.sub_attributes.values() if s.returned != "never"
        )
    if t in STRING_TYPES or t == "dateTime":
        return isinstance(value, str) and value != ""
    if t == "boolean":
        return isinstance(value, bool)
    if t in ("integer", "decimal"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return False  # pragma: no cover


def _fold(s: str) -> str:
    # Same folding as the indexed *_ci columns (gateway.store.rows.fold).
    return s.lower()


def value_matches(leaf: Attribute, op: str, expected: Any, actual: Any) -> bool:
    """One value against one comparison, per the leaf's type; wrong-typed data never matches."""
    if op == "pr":
        return _present_one(leaf, actual)
    t = leaf.type
    if t in STRING_TYPES:
        if not isinstance(actual, str):
            return False
        a, e = (actual, expected) if leaf.case_exact else (_fold(actual), _fold(expected))
        if op == "eq":
            return a == e
        if op == "co":
            return e in a
        if op == "sw":
            return a.startswith(e)
        if op == "ew":
            return a.endswith(e)
        return _order(op, a, e)
    if t == "boolean":
        return isinstance(actual, bool) and actual == expected
    if t == "dateTime":
        dt = parse_datetime(actual) if isinstance(actual, str) else None
        if dt is None:
            return False
        return dt == expected if op == "eq" else _order(op, dt, expected)
    if t in ("integer", "decimal"):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return False
        return actual == expected if op == "eq" else _order(op, actual, expected)
    return False


def _order(op: str, a: Any, e: Any) -> bool:
    if op == "gt":
        return bool(a > e)
    if op == "ge":
        return bool(a >= e)
    if op == "lt":
        return bool(a < e)
    return bool(a <= e)


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _attr_values(resource: dict[str, Any], attr: Attribute, urn: str | None) -> list[Any]:
    container = resource if urn is None else _get(resource, urn)
    raw = _get(container, attr.name)
    if attr.multi_valued:
        return raw if isinstance(raw, list) else []
    return [] if raw is None else [raw]


def _eval_cmp(c: BCmp, items: list[Any], element: bool) -> bool:
    """``items``: the attribute's values (elements for multi-valued). Any value matching is a match."""
    if c.sub is None:
        if c.op == "pr":
            return any(_present_one(c.attr, v) for v in items)
        return any(value_matches(c.attr, c.op, c.value, v) for v in items)
    for item in items:
        if not isinstance(item, dict):
            continue
        for v in _as_list(_get(item, c.sub.name)):
            if value_matches(c.sub, c.op, c.value, v):
                return True
    return False


def _eval(b: Bound, resource: dict[str, Any], element: Any = None) -> bool:
    if isinstance(b, BConst):
        return b.value
    if isinstance(b, BAnd):
        return all(_eval(x, resource, element) for x in b.items)
    if isinstance(b, BOr):
        return any(_eval(x, resource, element) for x in b.items)
    if isinstance(b, BNot):
        return not _eval(b.expr, resource, element)
    if isinstance(b, BValuePath):
        return any(
            isinstance(item, dict) and _eval(b.filter, resource, item)
            for item in _attr_values(resource, b.attr, b.urn)
        )
    if element is not None:
        return _eval_cmp(b, [element], True)
    return _eval_cmp(b, _attr_values(resource, b.attr, b.urn), False)


def matches(node: Node, resource: dict[str, Any], rtype: ResourceType) -> bool:
    """Evaluate ``node`` against a full SCIM resource (as returned to clients), per RFC 7644 §3.4.2.2.

    Strings compare case-insensitively unless the attribute is caseExact; a multi-valued attribute
    matches when any value does; dateTimes compare as instants. See the module docstring for the
    treatment of unknown attributes, ``ne`` and ``null``. Raises :class:`InvalidFilterError` for
    combinations the RFC rules out (``active gt true``), regardless of the resource.
    """
    return _eval(bind(node, rtype), resource)


def matches_value(node: Node, element: dict[str, Any], attr: Attribute) -> bool:
    """Evaluate a value filter (``emails[type eq "work"]``'s inner filter) against one element of ``attr``.

    Used by the PATCH engine to select the values a path targets.
    """
    return _eval(bind_value_filter(node, attr), {}, element)
