"""A per-process cache of API-key authentication, valid only while the database is unchanged.

Authentication reads a key and its tenant on every request; both change rarely (revocation, a tenant's
settings). A store that can tell cheaply whether anything at all was committed since a given moment,
by any connection of any process, can answer from memory in between: SQLite's ``PRAGMA data_version``
changes whenever another connection (another process, or this process's writer) commits. Every commit
empties the cache, so a revoked key or a disabled tenant is refused on the very next request in every
process; only a database with no commit since the previous lookup is answered from memory.

The change counter itself is read at most once per event-loop iteration. That is as exact as reading
it per request: a request whose bytes reached this process after a commit elsewhere is handled in a
later iteration than the one whose ``select`` returned them, and every read in that iteration happens
after that ``select``, so after the commit. This process's own commits expire the reading at once
(:meth:`expire`), so a write followed by a lookup in the same callback sees its own commit.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

_MAX_ENTRIES = 4096


class AuthCache:
    """key hash -> what ``find_api_key_tenant`` returned for it, for as long as ``version()`` stays put."""

    def __init__(self, version: Callable[[], int]) -> None:
        self._version = version
        self._seen = -1
        self._fresh = False  # ``_seen`` was read during this event-loop iteration
        self._entries: dict[str, Any] = {}

    def expire(self) -> None:
        """Forget the counter's reading: the next :meth:`current` reads it again."""
        self._fresh = False

    def current(self) -> int:
        """The database's change counter now; empties the cache if anything was committed since last time."""
        if self._fresh:
            return self._seen
        v = self._version()
        if v != self._seen:
            self._entries.clear()
            self._seen = v
        try:
            asyncio.get_running_loop().call_soon(self.expire)  # queued now, it runs first in the next iteration
        except RuntimeError:  # no loop (a synchronous caller): read every time
            return v
        self._fresh = True
        return v

    def get(self, key_hash: str) -> Any | None:
        self.current()
        return self._entries.get(key_hash)

    def put(self, key_hash: str, value: Any, version: int) -> None:
        """Remember ``value``, read from the database at ``version``, unless something committed since."""
        if self.current() != version or value is None:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_hash] = value
