"""scim-gateway: a plugin-based, multi-tenant SCIM 2.0 identity gateway.

Plugin authors need :data:`hookimpl`, the error classes, and the types in :mod:`gateway.types`.
"""

from __future__ import annotations

import pluggy

from gateway.core.errors import (
    InvalidFilterError,
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    ScimError,
    UniquenessError,
)
from gateway.types import Change, Client, ScimRequest, Stash, StashKey, Tenant

hookimpl = pluggy.HookimplMarker("scim_gateway")

__all__ = [
    "Change",
    "Client",
    "InvalidFilterError",
    "InvalidPathError",
    "InvalidSyntaxError",
    "InvalidValueError",
    "MutabilityError",
    "NoTargetError",
    "ScimError",
    "ScimRequest",
    "Stash",
    "StashKey",
    "Tenant",
    "UniquenessError",
    "hookimpl",
]
