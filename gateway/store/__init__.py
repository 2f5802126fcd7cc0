"""Multi-tenant storage: the Store protocol, SQLite (default) and PostgreSQL backends."""

from __future__ import annotations

from gateway.store.base import Store


def open_store(url: str) -> Store:
    """Build (not open) the store for a database URL or a SQLite file path."""
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.store.postgres import PostgresStore

        return PostgresStore(url)
    from gateway.store.sqlite import SqliteStore

    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
    return SqliteStore(path)


__all__ = ["Store", "open_store"]
