"""Paging: the RFC 7644 §3.4.2 list parameters, cursors (RFC 9865) and sequential startIndex walks."""

from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from gateway.core.errors import InvalidValueError
from gateway.core.projection import parse_attribute_list


@dataclass(slots=True)
class ListParams:
    filter: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None
    start_index: int = 1
    count: int | None = None
    cursor: str | None = None
    attributes: list[str] | None = None
    excluded: list[str] | None = None


def _int_param(name: str, raw: str | int | None, default: int | None) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidValueError(f"{name} must be an integer, got {raw!r:.40}") from None
    if not -(2**62) <= value <= 2**62:  # beyond what a database integer (or OFFSET) can take
        raise InvalidValueError(f"{name} is out of range, got {raw!r:.40}")
    return value


def list_params(query: dict[str, Any]) -> ListParams:
    """Read the RFC 7644 §3.4.2 query parameters (names case-insensitive)."""
    if not query:
        return ListParams()
    q = {k.lower(): v for k, v in query.items()}
    order = q.get("sortorder")
    if order is not None and str(order).lower() not in ("ascending", "descending"):
        raise InvalidValueError(f"sortOrder must be 'ascending' or 'descending', got {order!r}")
    attributes = q.get("attributes")
    excluded = q.get("excludedattributes")
    return ListParams(
        filter=q.get("filter") or None,
        sort_by=q.get("sortby") or None,
        sort_order=str(order).lower() if order else None,
        start_index=_int_param("startIndex", q.get("startindex"), 1) or 1,
        count=_int_param("count", q.get("count"), None),
        cursor=q.get("cursor"),
        attributes=attributes if isinstance(attributes, list) else parse_attribute_list(attributes),
        excluded=excluded if isinstance(excluded, list) else parse_attribute_list(excluded),
    )


def encode_cursor(seq: int, total: int) -> str:
    # The cursor is a position, not server state: it never expires and any process can resume it. It
    # carries the first page's totalResults so later pages need not count the whole result again.
    return base64.urlsafe_b64encode(json.dumps({"s": seq, "t": total}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        seq, total = data["s"], data["t"]
        if not isinstance(seq, int) or not isinstance(total, int):
            raise ValueError
        return seq, total
    except (ValueError, KeyError, TypeError):
        raise InvalidValueError("cursor is not valid", scim_type="invalidCursor") from None


class PagingWalks:
    """Where sequential index-paging walks (startIndex/count in insertion order) have got to.

    ``startIndex=N`` means OFFSET N-1, which costs O(N) per page and makes a full import O(n²); and
    ``totalResults`` is a count over the whole result on every page. A client walking page after
    page asks for exactly the position the previous page ended at, so this remembers, per query,
    (next startIndex -> last seq, total) and the next page resumes from the seq like a cursor.
    Entries die after ``ttl`` seconds and whenever this process writes to the tenant; a write in
    another process is seen within ``ttl`` (RFC 7644 §3.4.2.4 promises no consistency across pages
    under concurrent change anyway).
    """

    def __init__(self, *, ttl: float = 30.0, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, int, int]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> tuple[int, int] | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def remember(self, key: tuple[Any, ...], seq: int, total: int) -> None:
        self._entries[key] = (time.monotonic() + self.ttl, seq, total)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self._entries if k[0] == tenant_id]:
            del self._entries[key]
