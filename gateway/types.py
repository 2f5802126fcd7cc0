"""The plain-data types plugins see. No aiohttp, no SQL: a plugin written against these runs anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, Mapping, TypeVar, cast

__all__ = ["Change", "Client", "ScimRequest", "Stash", "StashKey", "Tenant"]

T = TypeVar("T")
D = TypeVar("D")


class StashKey(Generic[T]):
    """A typed key into a :class:`Stash`; make one per piece of state, at module level::

        seen_key = StashKey[list[str]]("myidp.seen")

    Keys compare by identity, so two plugins can never collide on a name.
    """

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StashKey({self.name!r})"


class Stash:
    """Per-request state a plugin shares between its own hooks, keyed by :class:`StashKey` (pytest's
    ``Stash`` idea): ``request.stash[seen_key] = []``, then ``request.stash[seen_key]`` is typed."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[StashKey[Any], object] = {}

    @staticmethod
    def _check(key: object) -> None:
        if not isinstance(key, StashKey):
            raise TypeError(f"stash keys are StashKey objects, not {type(key).__name__}: use StashKey[T]()")

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._check(key)
        self._data[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        self._check(key)
        return cast(T, self._data[key])

    def get(self, key: StashKey[T], default: D) -> T | D:
        self._check(key)
        return cast("T | D", self._data.get(key, default))

    def setdefault(self, key: StashKey[T], default: T) -> T:
        self._check(key)
        return cast(T, self._data.setdefault(key, default))

    def __delitem__(self, key: StashKey[T]) -> None:
        self._check(key)
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class Tenant:
    """The tenant a request is for, as plugins see it (read-only).

    ``idp`` is the tenant's IdP setting (``auto``, ``okta``, ``entra``, ``generic`` or an installed
    plugin's name); ``settings`` is the tenant's free-form settings object, read-only.
    """

    id: str
    name: str
    idp: str
    scim_enabled: bool
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(slots=True)
class ScimRequest:
    """One SCIM request as the pipeline sees it.

    ``path`` is relative to the tenant's SCIM base (``/Users/2819c223``); ``query`` holds the
    query parameters (``filter``, ``attributes``, ...) and may be edited by
    ``scim_normalize_query``; ``body`` is the parsed JSON body or None; ``headers`` has lower-case
    names and never includes ``authorization``.
    """

    method: str
    path: str
    resource_type: str | None
    resource_id: str | None
    query: dict[str, str]
    headers: Mapping[str, str]
    body: Any
    tenant: Tenant
    request_id: str = ""
    stash: Stash = field(default_factory=Stash)


@dataclass(slots=True)
class Client:
    """The identified IdP client: ``name`` is the plugin name (``okta``, ``entra``, ``generic``...)."""

    name: str
    stash: Stash = field(default_factory=Stash)


@dataclass(slots=True)
class Change:
    """A committed change, handed to ``scim_resource_changed`` after commit.

    ``action`` is one of ``created``, ``updated``, ``deactivated``, ``reactivated``, ``deleted``.
    ``resource`` is the resource as stored after the change (None after a delete).
    """

    tenant_id: str
    resource_type: str
    resource_id: str
    action: str
    version: int | None = None
    resource: dict[str, Any] | None = None
