"""Multi-tenant storage: the Store protocol, SQLite (default) and PostgreSQL backends."""

from __future__ import annotations

import re

from gateway.store.base import Store, StoreUnavailable

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(//)?")
POSTGRES_EXTRA = "pip install 'scim-gateway[postgres]'"


def sqlite_path(url: str) -> str:
    """The file a SQLite database URL or path names.

    ``sqlite:///var/lib/gw.db`` is the absolute ``/var/lib/gw.db`` (the URL form: empty host, then
    the path); a plain path is taken as given (relative to the working directory if relative).
    """
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:"):]
        if rest in (":memory:", "///:memory:", "//:memory:"):
            return ":memory:"
        if not rest.startswith("///"):
            raise StoreUnavailable(f"invalid SQLite URL {url!r}: use sqlite:///absolute/path or a plain file path")
        return "/" + rest[3:].lstrip("/")
    return url


def open_store(url: str, *, connect_timeout: float = 0.0) -> Store:
    """Build (not open) the store for a database URL or a SQLite file path.

    Raises :class:`StoreUnavailable` for an unknown scheme, a malformed SQLite URL, or a PostgreSQL
    URL when the ``postgres`` extra (asyncpg) is not installed. ``connect_timeout`` is how long a
    PostgreSQL ``open()`` retries an unreachable server.
    """
    if not url.strip():
        raise StoreUnavailable("no database given: pass --database or set SCIM_GATEWAY_DATABASE")
    m = _SCHEME.match(url)
    scheme = m.group(1).lower() if m else ""
    # A scheme is "name://" (or sqlite:); "C:\\data\\gw.db" and "data:2024.db" are paths.
    if m and (m.group(2) or scheme == "sqlite") and len(scheme) > 1:
        if scheme in ("postgresql", "postgres"):
            try:
                from gateway.store.postgres import PostgresStore
            except ImportError:
                raise StoreUnavailable(
                    f"PostgreSQL support is not installed: {POSTGRES_EXTRA} (it adds asyncpg)") from None
            return PostgresStore(url, connect_timeout=connect_timeout)
        if scheme != "sqlite":
            raise StoreUnavailable(f"unknown database scheme {scheme!r}: use a SQLite file path, sqlite:///path or postgresql://...")
    from gateway.store.sqlite import SqliteStore

    return SqliteStore(sqlite_path(url))


__all__ = ["Store", "StoreUnavailable", "open_store", "sqlite_path"]
