"""The one SCIM route table: what a tenant-relative path addresses and which methods it allows.

Every entry point consults it: the HTTP layer (to describe the request to plugins), the pipeline
(to dispatch), Bulk (for each operation's path) and the test kit's synthetic requests. Endpoint
names match case-insensitively; resource ids are kept as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from gateway.core.errors import NotFoundError
from gateway.core.schema import group_type, user_type

# endpoint (lower case) -> resource type name (RFC 7643 §6, RFC 7644 §3.2)
RESOURCE_ENDPOINTS = {rt.endpoint.strip("/").lower(): rt.name for rt in (user_type(), group_type())}
DISCOVERY_ENDPOINTS = frozenset({"serviceproviderconfig", "resourcetypes", "schemas"})
SEARCH = ".search"
ALLOWED_METHODS = {
    "collection": frozenset({"GET", "POST"}),
    "item": frozenset({"GET", "PUT", "PATCH", "DELETE"}),
    "search": frozenset({"POST"}),
    "bulk": frozenset({"POST"}),
    "discovery": frozenset({"GET"}),
}


@dataclass(frozen=True, slots=True)
class Route:
    """``kind`` is collection, item, search, bulk or discovery.

    ``resource_type`` is ``User``/``Group`` (None for root ``/.search``, Bulk and discovery);
    ``resource_id`` is set for items only; ``discovery`` is the lower-cased discovery endpoint and
    ``key`` its optional sub-path (``/Schemas/<urn>``).
    """

    kind: str
    resource_type: str | None = None
    resource_id: str | None = None
    discovery: str | None = None
    key: str | None = None

    @property
    def methods(self) -> frozenset[str]:
        return ALLOWED_METHODS[self.kind]


@lru_cache(maxsize=64)  # the HTTP layer and the pipeline ask for the same path in turn; a Route is frozen
def match(path: str) -> Route | None:
    """The route for a tenant-relative ``path`` (query string ignored), or None when nothing is there."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if not parts or len(parts) > 2:
        return None
    head = parts[0].lower()
    if len(parts) == 1:
        if head == SEARCH:
            return Route("search")
        if head == "bulk":
            return Route("bulk")
    if head in DISCOVERY_ENDPOINTS:
        return Route("discovery", discovery=head, key=parts[1] if len(parts) == 2 else None)
    rtype = RESOURCE_ENDPOINTS.get(head)
    if rtype is None:
        return None
    if len(parts) == 1:
        return Route("collection", rtype)
    if parts[1] == SEARCH:
        return Route("search", rtype)
    return Route("item", rtype, parts[1])


def resolve(path: str) -> Route:
    """:func:`match`, raising the SCIM 404 a client gets for a path that addresses nothing."""
    route = match(path)
    if route is not None:
        return route
    if not [p for p in path.split("?", 1)[0].split("/") if p]:
        raise NotFoundError("no SCIM endpoint at the tenant root; try /Users or /Groups")
    raise NotFoundError(f"no SCIM endpoint at {path}")
