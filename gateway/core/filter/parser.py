"""Recursive-descent parser for SCIM filters (RFC 7644 §3.4.2.2 Figure 1 with errata) and PATCH paths (§3.5.2)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from gateway.core.errors import InvalidFilterError, InvalidPathError
from gateway.core.filter.nodes import (COMPARE_OPS, MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, And, AttrPath, Compare,
    Node, Not, Or, PatchPath, Present, Value, ValuePath)


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

