"""SCIM filters and PATCH paths: parser, AST, schema binding and the in-memory evaluator.

Grammar: RFC 7644 §3.4.2.2 Figure 1 with its errata applied (``and`` binds tighter than ``or``,
``not`` tighter than ``and``; ``not`` may be followed by a space before ``(``). PATCH paths follow the
PATH rule of RFC 7644 §3.5.2. Both parsers are schema-agnostic: names are kept as written and
resolved later against a :class:`~gateway.core.schema.ResourceType` by :func:`bind`.

Leniencies, because real clients send them:

* ``emails[type eq "work"].value eq "x"`` (a sub-attribute after a value filter) is read as
  ``emails[type eq "work" and value eq "x"]``;
* unquoted values without spaces (``externalId eq jyoung``) are strings;
* ``not`` may be applied to an expression without parentheses (``not title pr``).

Semantics decided here and shared with :mod:`gateway.core.sqlfilter` through :func:`bind`, so the
evaluator and the SQL compiler cannot drift apart:

* An attribute that the schema does not define, or one that is never returned (``password``), is
  treated as *unassigned* (RFC 7643 §2.5): every comparison on it is false, ``pr`` is false. RFC 7644
  gives no error for unknown attributes in a filter (its ``invalidFilter`` covers syntax and
  unsupported operator/attribute-type combinations, §3.12), and answering "no such resource"
  avoids leaking the schema of other tenants' extensions.
* ``ne`` is the complement of ``eq``: ``title ne "x"`` matches a resource with no title (an unassigned
  value "is not identical" to "x", §3.4.2.2 Figure 2) and ``emails.value ne "x"`` matches when no
  email equals "x". So ``a ne v`` and ``not (a eq v)`` always agree; this is also how the UnboundID
  SCIM 2 SDK reference evaluator behaves.
* ``eq null`` means "not present" and ``ne null`` means "present".
* ``gt``/``ge``/``lt``/``le`` on boolean, binary or complex attributes are ``invalidFilter`` (§3.4.2.2);
  ``co``/``sw``/``ew`` are only defined for strings and are ``invalidFilter`` on other types.
* A complex attribute compared without a sub-attribute uses its ``value`` sub-attribute
  (``emails co "example.com"`` is ``emails.value co "example.com"``, the §3.4.2.2 example, and
  RFC 7643 §2.4); a complex attribute without ``value`` only supports ``pr``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Union

from gateway.core.errors import InvalidFilterError, InvalidPathError
from gateway.core.schema import Attribute, ResourceType

MAX_FILTER_LENGTH = 4096
MAX_FILTER_DEPTH = 50

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})
SUBSTRING_OPS = frozenset({"co", "sw", "ew"})
STRING_TYPES = frozenset({"string", "reference", "binary"})

Value = Union[str, int, float, bool, None]


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[urn ":"] attr ["." sub]`` exactly as written by the client."""

    urn: str | None
    attr: str
    sub: str | None = None

    def __str__(self) -> str:
        head = f"{self.urn}:{self.attr}" if self.urn else self.attr
        return f"{head}.{self.sub}" if self.sub else head


@dataclass(frozen=True, slots=True)
class Compare:
    path: AttrPath
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Present:
    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: "Node"
    right: "Node"


@dataclass(frozen=True, slots=True)
class Or:
    left: "Node"
    right: "Node"


@dataclass(frozen=True, slots=True)
class Not:
    expr: "Node"


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``path[filter]``: the inner filter's attribute names are sub-attributes of ``path``."""

    path: AttrPath
    filter: "Node"


Node = Union[Compare, Present, And, Or, Not, ValuePath]


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2): ``path``, optional value ``filter``, optional ``sub`` after it."""

    path: AttrPath
    filter: Node | None = None
    sub: str | None = None


# --------------------------------------------------------------------------- parser

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*|\$ref")
# A path word: URN characters plus name characters; stops at whitespace, brackets, quotes.
_WORD_RE = re.compile(r"[A-Za-z0-9_$:.\-]+")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_BARE_VALUE_RE = re.compile(r"[^\s()\[\]]+")


class _Parser:
    """Recursive-descent parser over the raw text; positions in errors are 0-based offsets."""

    def __init__(
        self, text: str, error: type[InvalidFilterError] | type[InvalidPathError], max_depth: int = MAX_FILTER_DEPTH
    ) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.max_depth = min(max_depth, MAX_FILTER_DEPTH)
        self.error = error

    # -- helpers
    def fail(self, detail: str) -> Exception:
        return self.error(detail)

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token_at(self, pos: int) -> str:
        m = _BARE_VALUE_RE.match(self.text, pos)
        return m.group(0) if m else self.text[pos : pos + 1]

    def unexpected(self, expected: str) -> Exception:
        self.skip_ws()
        if self.pos >= len(self.text):
            return self.fail(f"unexpected end of filter at position {self.pos}: expected {expected}")
        return self.fail(f"unexpected token '{self.token_at(self.pos)}' at position {self.pos}: expected {expected}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.fail(f"filter nesting deeper than {self.max_depth} levels at position {self.pos} (setting max_filter_depth)")

    def leave(self) -> None:
        self.depth -= 1

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.unexpected(f"'{ch}'")
        self.pos += 1

    def word(self) -> tuple[str, int] | None:
        """The next keyword/name word (letters etc.), without consuming it."""
        self.skip_ws()
        m = _WORD_RE.match(self.text, self.pos)
        if not m:
            return None
        return m.group(0), self.pos

    # -- grammar
    def parse_filter(self) -> Node:
        node = self.or_expr()
        if not self.at_end():
            raise self.unexpected("'and', 'or' or end of filter")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.keyword("and"):
            node = And(node, self.unary())
        return node

    def keyword(self, kw: str) -> bool:
        w = self.word()
        if w is not None and w[0].lower() == kw:
            self.pos = w[1] + len(w[0])
            return True
        return False

    def unary(self) -> Node:
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.unexpected("an expression")
        ch = self.text[self.pos]
        if ch == "(":
            self.enter()
            self.pos += 1
            node = self.or_expr()
            self.expect(")")
            self.leave()
            return node
        w = self.word()
        if w is not None and w[0].lower() == "not":
            # Errata 7319: "not" SP "(" ...; we also accept "not(" and "not attrExp".
            self.pos = w[1] + 3
            self.enter()
            node = Not(self.unary())
            self.leave()
            return node
        return self.attr_exp()

    def attr_path(self) -> tuple[AttrPath, int]:
        self.skip_ws()
        start = self.pos
        m = _WORD_RE.match(self.text, self.pos)
        if not m:
            raise self.unexpected("an attribute name")
        self.pos = m.end()
        return split_attr_path(m.group(0), start, self.fail), start

    def attr_exp(self) -> Node:
        path, start = self.attr_path()
        if self.pos < len(self.text) and self.text[self.pos] == "[":
            return self.value_path(path)
        return self.op_and_value(path)

    def op_and_value(self, path: AttrPath) -> Node:
        w = self.word()
        if w is None:
            raise self.unexpected("an operator")
        op, at = w[0].lower(), w[1]
        if op == "pr":
            self.pos = at + 2
            return Present(path)
        if op not in COMPARE_OPS:
            raise self.fail(f"unknown operator '{w[0]}' at position {at}")
        self.pos = at + len(w[0])
        return Compare(path, op, self.comp_value())

    def value_path(self, path: AttrPath) -> Node:
        if path.sub is not None:
            raise self.fail(f"a value filter cannot follow the sub-attribute '{path}' at position {self.pos}")
        self.enter()
        self.pos += 1  # '['
        inner = self.or_expr()
        self.expect("]")
        self.leave()
        # Out-of-grammar form: emails[type eq "work"].value eq "x"
        if self.pos < len(self.text) and self.text[self.pos] == ".":
            self.pos += 1
            m = _NAME_RE.match(self.text, self.pos)
            if not m or (m.end() < len(self.text) and _WORD_RE.match(self.text[m.end()])):
                raise self.fail(f"invalid sub-attribute after ']' at position {self.pos}")
            self.pos = m.end()
            tail = self.op_and_value(AttrPath(None, m.group(0), None))
            return ValuePath(path, And(inner, tail))
        return ValuePath(path, inner)

    def comp_value(self) -> Value:
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.fail(f"missing comparison value at position {self.pos}")
        start = self.pos
        if self.text[start] == '"':
            return self.string()
        m = _BARE_VALUE_RE.match(self.text, start)
        if not m:
            raise self.unexpected("a comparison value")
        raw = m.group(0)
        self.pos = m.end()
        if raw == "true":
            return True
        if raw == "false":
            return False
        if raw == "null":
            return None
        num = _NUMBER_RE.fullmatch(raw)
        if num:
            number: int | float = float(raw) if num.group(1) or num.group(2) else int(raw)
            # Out-of-range numbers would overflow the database's integer or double, differently per backend.
            if isinstance(number, int) and not -(2**63) <= number < 2**63 or number in (float("inf"), float("-inf")):
                raise self.fail(f"number '{raw:.40}' at position {start} is out of range")
            return number
        # Not a JSON literal: real clients send unquoted strings (externalId eq jyoung).
        if '"' in raw:
            raise self.fail(f"invalid value '{raw}' at position {start}")
        return raw

    def string(self) -> str:
        start = self.pos
        i = start + 1
        text = self.text
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                try:
                    value: str = json.loads(text[start : i + 1])
                except ValueError:
                    raise self.fail(f"invalid escape in string at position {start}") from None
                if "\x00" in value:
                    raise self.fail(f"NUL character (\\u0000) in string at position {start}")
                if not value.isascii():
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError:  # a lone surrogate (\ud800) no database can bind
                        raise self.fail(f"lone UTF-16 surrogate in string at position {start}") from None
                self.pos = i + 1
                return value
            if c < " ":
                raise self.fail(f"control character in string at position {i}")
            i += 1
        raise self.fail(f"unterminated string at position {start}")


def split_attr_path(word: str, pos: int, fail: Any) -> AttrPath:
    """Split ``[urn:]attr[.sub]``; the URN ends at the last ``:`` (URNs contain dots, e.g. ``2.0``)."""
    urn: str | None = None
    rest = word
    if word[:4].lower() == "urn:":
        urn, sep, rest = word.rpartition(":")
        if urn.count(":") < 2 or not rest:  # urn:<nid>:<nss>:attr
            raise fail(f"invalid attribute path '{word}' at position {pos}")
    attr, _, sub = rest.partition(".")
    if not _NAME_RE.fullmatch(attr) or (sub and not _NAME_RE.fullmatch(sub)) or rest.endswith("."):
        raise fail(f"invalid attribute path '{word}' at position {pos}")
    return AttrPath(urn, attr, sub or None)


def _check_length(text: str, error: type[Exception]) -> None:
    if not isinstance(text, str):
        raise error("filter must be a string")
    if len(text) > MAX_FILTER_LENGTH:
        raise error(f"filter is longer than {MAX_FILTER_LENGTH} characters")


@lru_cache(maxsize=2048)
def _parse_filter_cached(text: str, max_depth: int) -> Node:
    parser = _Parser(text, InvalidFilterError, max_depth)
    if parser.at_end():
        raise InvalidFilterError("empty filter")
    return parser.parse_filter()


def parse_filter(text: str, *, max_depth: int = MAX_FILTER_DEPTH) -> Node:
    """Parse a SCIM filter (RFC 7644 §3.4.2.2) into an AST.

    Raises :class:`InvalidFilterError` naming the problem and its 0-based position. Parses are
    cached by text; the returned nodes are immutable.
    """
    _check_length(text, InvalidFilterError)
    return _parse_filter_cached(text, max_depth)


@lru_cache(maxsize=1024)
def _parse_patch_path_cached(text: str) -> PatchPath:
    parser = _Parser(text, InvalidPathError)
    if parser.at_end():
        raise InvalidPathError("empty path")
    try:
        path, _ = parser.attr_path()
        flt: Node | None = None
        sub: str | None = None
        if parser.pos < len(text) and text[parser.pos] == "[":
            if path.sub is not None:
                raise InvalidPathError(f"a value filter cannot follow the sub-attribute '{path}'")
            parser.enter()
            parser.pos += 1
            flt = parser.or_expr()
            parser.expect("]")
            parser.leave()
            if parser.pos < len(text) and text[parser.pos] == ".":
                m = _NAME_RE.match(text, parser.pos + 1)
                if not m:
                    raise InvalidPathError(f"invalid sub-attribute after ']' at position {parser.pos + 1}")
                sub = m.group(0)
                parser.pos = m.end()
        if not parser.at_end():
            raise parser.unexpected("end of path")
    except InvalidFilterError as exc:  # pragma: no cover - parser raises InvalidPathError already
        raise InvalidPathError(exc.detail) from None
    return PatchPath(path, flt, sub)


def parse_patch_path(text: str) -> PatchPath:
    """Parse a PATCH operation ``path`` (RFC 7644 §3.5.2 PATH ABNF); bad paths raise :class:`InvalidPathError`."""
    _check_length(text, InvalidPathError)
    return _parse_patch_path_cached(text)


# --------------------------------------------------------------------------- binding to a schema


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


# --------------------------------------------------------------------------- evaluator


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


def _test(leaf: Attribute, op: str, expected: Any, actual: Any) -> bool:
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
        return any(_test(c.attr, c.op, c.value, v) for v in items)
    for item in items:
        if not isinstance(item, dict):
            continue
        for v in _as_list(_get(item, c.sub.name)):
            if _test(c.sub, c.op, c.value, v):
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
    if not attr.is_complex:
        raise InvalidFilterError(f"a value filter needs a complex attribute, not '{attr.name}'")
    rt = ResourceType("", "", "", "", {attr.name.lower(): attr}, {})
    bound = _bind(node, rt, (attr, None))
    return _eval(bound, {}, element)
