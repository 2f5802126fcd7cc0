"""Binding a parsed filter to a schema: names resolved, values coerced, RFC-invalid combinations rejected.

The evaluator and the SQL compiler both work from this output, so they cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Union

from gateway.core.errors import InvalidFilterError
from gateway.core.filter.nodes import (ORDER_OPS, STRING_TYPES, SUBSTRING_OPS, And, AttrPath, Node, Not, Or,
    Present, Value, ValuePath)
from gateway.core.schema import Attribute, ResourceType



@dataclass(frozen=True, slots=True)
class BCmp:
    """A comparison bound to the schema. ``op`` is one of eq co sw ew gt ge lt le pr (``ne`` is Not(eq)).

    At resource scope ``attr`` is the top-level attribute and ``sub`` the optional sub-attribute; inside
    a value filter (:class:`BValuePath`) ``attr`` is the parent and ``sub`` the element's sub-attribute
    (``None`` for an element of a multi-valued simple attribute). ``value`` is coerced to the leaf type
    (``datetime`` for dateTime).
    """

    attr: Attribute
    sub: Attribute | None
    urn: str | None
    op: str
    value: Any = None

    @property
    def leaf(self) -> Attribute:
        return self.sub or self.attr


@dataclass(frozen=True, slots=True)
class BConst:
    value: bool


@dataclass(frozen=True, slots=True)
class BAnd:
    items: tuple["Bound", ...]


@dataclass(frozen=True, slots=True)
class BOr:
    items: tuple["Bound", ...]


@dataclass(frozen=True, slots=True)
class BNot:
    expr: "Bound"


@dataclass(frozen=True, slots=True)
class BValuePath:
    attr: Attribute
    urn: str | None
    filter: "Bound"


Bound = Union[BCmp, BConst, BAnd, BOr, BNot, BValuePath]


def parse_datetime(text: str) -> datetime | None:
    """Parse an xsd:dateTime (``2011-05-13T04:42:34Z``, fractional seconds, offsets) to an aware UTC instant."""
    if not isinstance(text, str) or len(text) < 10:
        return None
    s = text.strip()
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    # fromisoformat in 3.11 handles any number of fractional digits up to 6; trim longer ones.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", s)
    if m:
        s = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # xsd:dateTime without offset: the server's zone is UTC
    return dt.astimezone(timezone.utc)


def _coerce(leaf: Attribute, op: str, value: Value, where: AttrPath) -> Any:
    """The comparison value as the leaf's type; InvalidFilterError when the combination is meaningless."""
    t = leaf.type
    if t == "complex":
        raise InvalidFilterError(f"'{where}' is complex: name a sub-attribute to compare with '{op}'")
    if t == "boolean":
        if op != "eq":
            raise InvalidFilterError(f"operator '{op}' is not supported for boolean attribute '{where}'")
        if isinstance(value, bool):
            return value
        # a quoted "True" is a string (RFC 7644 §3.4.2.2 compValue); IdP plugins unquote their own quirks
        raise InvalidFilterError(f"'{where}' is boolean: compare it with true or false, unquoted")
    if op in ORDER_OPS and t == "binary":
        raise InvalidFilterError(f"operator '{op}' is not supported for binary attribute '{where}'")
    if op in SUBSTRING_OPS and t not in STRING_TYPES:
        raise InvalidFilterError(f"operator '{op}' is only supported for string attributes, not '{where}'")
    if t in STRING_TYPES:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return value
    if t == "dateTime":
        dt = parse_datetime(value) if isinstance(value, str) else None
        if dt is None:
            raise InvalidFilterError(f"'{where}' is a dateTime: {value!r} is not a valid xsd:dateTime")
        return dt
    if t in ("integer", "decimal"):
        num: Any = value
        if isinstance(value, str):
            try:
                num = int(value) if t == "integer" else float(value)
            except ValueError:
                num = None
        if isinstance(num, bool) or not isinstance(num, (int, float)):
            raise InvalidFilterError(f"'{where}' is numeric: {value!r} is not a number")
        return num
    raise InvalidFilterError(f"cannot filter on attribute '{where}' of type {t}")  # pragma: no cover


def _resolve(path: AttrPath, rtype: ResourceType) -> tuple[Attribute, Attribute | None, str | None] | None:
    text = str(path)
    rp = rtype.resolve(text)
    if rp is None:
        return None
    if rp.attribute.returned == "never" or (rp.sub is not None and rp.sub.returned == "never"):
        return None  # e.g. password: never readable, so never matchable (no oracle on secrets)
    return rp.attribute, rp.sub, rp.urn


def _bind_cmp(attr: Attribute, sub: Attribute | None, urn: str | None, op: str, value: Value,
              where: AttrPath, element: bool) -> Bound:
    leaf = sub or attr
    if sub is None and leaf.is_complex and not element and op != "pr":
        vsub = attr.sub("value")
        if vsub is None:
            raise InvalidFilterError(f"'{where}' is complex: name a sub-attribute to compare with '{op}'")
        sub, leaf = vsub, vsub
    if op == "pr":
        return BCmp(attr, sub, urn, "pr")
    if value is None:
        if op == "eq":  # "eq null": the attribute has no value
            return BNot(BCmp(attr, sub, urn, "pr"))
        if op == "ne":
            return BCmp(attr, sub, urn, "pr")
        raise InvalidFilterError(f"operator '{op}' cannot compare '{where}' with null")
    if op == "ne":
        return BNot(BCmp(attr, sub, urn, "eq", _coerce(leaf, "eq", value, where)))
    return BCmp(attr, sub, urn, op, _coerce(leaf, op, value, where))


def _unknown(op: str, value: Value = None) -> Bound:
    # Unassigned attribute: every comparison is false; "ne" (and "ne null"'s opposite, "eq null") true.
    if op == "ne" and value is not None:
        return BConst(True)
    if op == "eq" and value is None:
        return BConst(True)
    return BConst(False)


def _flatten(node: Node, cls: type[And] | type[Or]) -> list[Node]:
    """Operands of a chain of And (or Or) nodes, left to right, without recursion.

    Long flat chains (hundreds of ``or`` terms fit in 4096 characters) would otherwise recurse past
    Python's limit in the evaluator and compiler.
    """
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (And, Or)) and isinstance(n, cls):
            stack.append(n.right)
            stack.append(n.left)
        else:
            out.append(n)
    return out


def _bind(node: Node, rtype: ResourceType, parent: tuple[Attribute, str | None] | None) -> Bound:
    if isinstance(node, And):
        return BAnd(tuple(_bind(n, rtype, parent) for n in _flatten(node, And)))
    if isinstance(node, Or):
        return BOr(tuple(_bind(n, rtype, parent) for n in _flatten(node, Or)))
    if isinstance(node, Not):
        return BNot(_bind(node.expr, rtype, parent))
    if isinstance(node, ValuePath):
        if parent is not None:
            raise InvalidFilterError(f"value filters cannot be nested ('{node.path}[...]')")
        r = _resolve(node.path, rtype)
        if r is None:
            return BConst(False)
        attr, sub, urn = r
        if sub is not None or not attr.is_complex:
            raise InvalidFilterError(f"a value filter needs a complex attribute, not '{node.path}'")
        return BValuePath(attr, urn, _bind(node.filter, rtype, (attr, urn)))
    op = "pr" if isinstance(node, Present) else node.op
    value = None if isinstance(node, Present) else node.value
    path = node.path
    if parent is None:
        r = _resolve(path, rtype)
        if r is None:
            return _unknown(op, value)
        attr, sub, urn = r
        return _bind_cmp(attr, sub, urn, op, value, path, element=False)
    # Inside a value filter: names are sub-attributes of the parent. Accept the redundant
    # "emails[emails.type eq ...]" spelling too.
    pattr, purn = parent
    name: str | None = path.attr
    if path.urn is not None or path.sub is not None:
        same = path.attr.lower() == pattr.name.lower() and (
            path.urn is None or rtype.canonical_urn(path.urn) == (purn or rtype.schema)
        )
        name = path.sub if same else None
    s = pattr.sub(name) if name else None
    if s is None or s.returned == "never":
        return _unknown(op, value)
    return _bind_cmp(pattr, s, purn, op, value, path, element=True)


def bind(node: Node, rtype: ResourceType) -> Bound:
    """Resolve names against ``rtype`` and coerce values: the form both the evaluator and the SQL compiler use.

    Raises :class:`InvalidFilterError` for operator/type combinations RFC 7644 rules out.
    """
    return _bind(node, rtype, None)


def validate(node: Node, rtype: ResourceType) -> None:
    """Raise :class:`InvalidFilterError` if ``node`` is not a valid filter for ``rtype`` (e.g. ``active gt true``)."""
    bind(node, rtype)


def bind_value_filter(node: Node, attr: Attribute) -> Bound:
    """Bind a value filter's inner filter (``emails[type eq "work"]``) to the complex attribute ``attr``."""
    if not attr.is_complex:
        raise InvalidFilterError(f"a value filter needs a complex attribute, not '{attr.name}'")
    rt = ResourceType("", "", "", "", {attr.name.lower(): attr}, {})
    return _bind(node, rt, (attr, None))
