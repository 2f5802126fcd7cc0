"""The filter AST: names kept as the client wrote them, resolved later by :mod:`gateway.core.filter.binder`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

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

