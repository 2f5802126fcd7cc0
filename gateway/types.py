"""The plain-data types plugins see. No aiohttp, no SQL: a plugin written against these runs anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["Change", "Client", "ScimRequest", "Tenant"]


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
    stash: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Client:
    """The identified IdP client: ``name`` is the plugin name (``okta``, ``entra``, ``generic``...)."""

    name: str
    stash: dict[str, Any] = field(default_factory=dict)


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
