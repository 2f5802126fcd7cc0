"""What a store backend's connection offers the shared SQL (and the mixins SqlOps is built from).

Mixins under gateway/store/ import :class:`Conn` from here, not from :mod:`gateway.store.sql`, so
the modules SqlOps inherits from never import SqlOps's own module back.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence, TypeVar

import orjson

_T = TypeVar("_T")


class Conn(Protocol):
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...
    async def fetchrow(self, sql: str, params: Sequence[Any] = ()) -> Any | None: ...
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int: ...


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def in_lists(ids: Sequence[_T], size: int = 500) -> Iterator[tuple[Sequence[_T], str]]:
    """``(chunk, "?, ?, ...")`` for each slice of ``ids``: IN lists short enough for any backend."""
    for i in range(0, len(ids), size):
        chunk = ids[i : i + size]
        yield chunk, ", ".join("?" * len(chunk))


def newest_first(
    sql: str, params: Sequence[Any], *, where: Sequence[tuple[str, str | None]], seq: str, before: int | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """One page of ``sql`` (a ``SELECT ... WHERE ...``), newest first by ``seq``: ``AND column = ?`` for each
    ``(column, value)`` of ``where`` with a value, ``seq < before`` when a cursor is given, at most ``limit`` rows."""
    out = list(params)
    for column, value in where:
        if value:
            sql += f" AND {column} = ?"
            out.append(value)
    if before is not None:
        sql += f" AND {seq} < ?"
        out.append(before)
    out.append(limit)
    return f"{sql} ORDER BY {seq} DESC LIMIT ?", out
