"""The storage contract every backend implements and the contract test suite runs against.

All methods are keyed by tenant id. ``write()`` opens one transaction: everything done through
the returned :class:`Tx` commits together or not at all. Reads outside a transaction go through
``read()``, which may use a separate connection and sees committed data only.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence


class StoreConflict(Exception):
    """A write violated a uniqueness constraint (the backend's own error, translated)."""


class StoreUnavailable(Exception):
    """The database cannot be opened or used; the message is one line for an operator (no secret in it)."""


@dataclass(slots=True)
class TenantRow:
    id: str
    name: str
    idp: str
    scim_enabled: bool
    log_successful_events: bool
    role_mapping: dict[str, Any]
    settings: dict[str, Any]
    created: str
    # Bumped by every change to the tenant's custom schema extensions: caches of them compare it.
    schema_version: int = 0


@dataclass(slots=True)
class ApiKeyRow:
    id: str
    tenant_id: str
    name: str
    prefix: str
    created: str
    last_used: str | None
    revoked: str | None


@dataclass(slots=True)
class ResourceRow:
    """A stored User or Group: ``data`` as in :mod:`gateway.store.rows`, plus columns."""

    id: str
    data: dict[str, Any]
    version: int
    created: str
    last_modified: str
    seq: int = 0
    roles: list[str] = field(default_factory=list)
    provisioned_by: str = "scim"
    active: bool = True
    # The stored ``data`` as the backend returned it (JSON text), on rows of a ``Query(raw=True)``
    # page: their ``data`` is left empty, undecoded, for a caller that renders the text itself.
    raw: str | None = None


@dataclass(slots=True)
class Member:
    value: str
    type: str
    display: str | None = None


@dataclass(slots=True)
class Query:
    """A compiled list query: ``where`` uses ``?`` placeholders over the table aliased ``r``."""

    where: str = ""
    params: list[Any] = field(default_factory=list)
    order_by: str | None = None  # SQL expression; None means insertion order
    descending: bool = False
    offset: int = 0
    limit: int | None = None
    after_seq: int | None = None  # cursor pagination: resume after this seq (ascending order)
    count_total: bool = True
    known_total: int = -1  # the total carried by a cursor when count_total is off
    point: bool = False  # answered from an index in constant time: a backend may take its fast path
    # performance: a subquery (``?`` placeholders, ``narrow_params``) selecting a superset of the matching
    # rows' ``seq``, from a substring index (gateway.core.substring); "" = none. It only narrows: ``where``
    # still decides.
    narrow: str = ""
    narrow_params: list[Any] = field(default_factory=list)
    # performance: rows come back with ``raw`` (the stored JSON text), an empty ``data``, and only the columns a
    # rendering reads (roles, provisioned_by and active keep their defaults)
    raw: bool = False


@dataclass(slots=True)
class Page:
    total: int
    rows: list[ResourceRow]


@dataclass(slots=True)
class SchemaRow:
    """A tenant's custom schema extension: an RFC 7643 §7 ``document`` extending ``resource_type``."""

    urn: str
    resource_type: str  # "User" or "Group"
    required: bool
    document: dict[str, Any]
    created: str
    last_modified: str


@dataclass(slots=True)
class EventRow:
    seq: int
    tenant_id: str
    type: str
    created: str
    data: dict[str, Any]


# --- change feed (issue 10): outbox events, webhook endpoints and deliveries --------------------
@dataclass(slots=True)
class OutboxEvent:
    """One event of a tenant's change feed; ``seq`` is assigned when its transaction commits."""

    id: str
    type: str
    tenant_id: str
    occurred_at: str
    source: str
    client: str | None
    data: dict[str, Any]
    seq: int = 0


@dataclass(slots=True)
class WebhookRow:
    id: str
    tenant_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    secret: str
    cursor_seq: int
    failing: bool
    created: str
    updated: str


@dataclass(slots=True)
class DeliveryRow:
    id: str
    tenant_id: str
    endpoint_id: str
    event_seq: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: str
    lease_until: str | None
    lease_token: str | None
    created: str
    completed_at: str | None


class FeedReader(Protocol):
    async def read_outbox(
        self, tenant_id: str, *, after: int | None, limit: int, types: Sequence[str] = ()
    ) -> tuple[int, int, list[OutboxEvent]]: ...
    async def outbox_tenants(self) -> list[str]: ...
    async def feed_stats(self) -> dict[str, Any]: ...
    async def users_by_ids(self, tenant_id: str, user_ids: list[str]) -> dict[str, "ResourceRow"]: ...
    async def get_webhook(self, tenant_id: str, webhook_id: str) -> WebhookRow | None: ...
    async def list_webhooks(self, tenant_id: str) -> list[WebhookRow]: ...
    async def webhooks_behind(self) -> list[tuple[str, str]]: ...
    async def list_deliveries(
        self, tenant_id: str, webhook_id: str, *, status: str | None, limit: int, before_seq: int | None
    ) -> list[DeliveryRow]: ...
    async def get_delivery(self, tenant_id: str, webhook_id: str, delivery_id: str) -> DeliveryRow | None: ...
    async def outbox_events(self, tenant_id: str, seqs: list[int]) -> dict[int, OutboxEvent]: ...


class FeedTx(FeedReader, Protocol):
    emitting: bool

    def emit(self, events: Sequence[OutboxEvent]) -> None:
        """Buffer events; the backend numbers and writes them right before this transaction commits."""
        ...
    async def flush_outbox(self) -> int: ...
    async def insert_members(self, tenant_id: str, group_id: str, members: list["Member"]) -> list[str]: ...
    async def prune_outbox(self, tenant_id: str, *, before: str) -> int: ...
    async def insert_webhook(self, row: WebhookRow) -> None: ...
    async def update_webhook(self, tenant_id: str, webhook_id: str, **fields: Any) -> bool: ...
    async def delete_webhook(self, tenant_id: str, webhook_id: str) -> bool: ...
    async def fan_out(self, tenant_id: str, webhook_id: str, *, when: str, new_id: Any, limit: int = 1000) -> int: ...
    async def claim_deliveries(
        self, *, when: str, lease_until: str, token: str, limit: int, batch: int = 1
    ) -> list[DeliveryRow]: ...
    async def renew_leases(self, delivery_ids: list[str], token: str, *, lease_until: str | None) -> int: ...
    async def finish_delivery(
        self,
        delivery_id: str,
        token: str,
        *,
        status: str,
        when: str,
        next_attempt_at: str | None = None,
        http_status: int | None = None,
        error: str | None = None,
    ) -> bool: ...
    async def retry_delivery(self, tenant_id: str, webhook_id: str, delivery_id: str, *, when: str) -> bool: ...


# portal access (issue 9) ---------------------------------------------------------------------
@dataclass(slots=True)
class PortalLinkRow:
    tenant_id: str
    created: str
    expires: str
    used: str | None


@dataclass(slots=True)
class PortalSessionRow:
    """A portal session; ``tenant_id`` None is an operator's. Only the id's hash is stored."""

    id_hash: str
    tenant_id: str | None
    created: str
    last_seen: str
    expires: str


class PortalReader(Protocol):
    async def get_portal_link(self, token_hash: str) -> PortalLinkRow | None: ...
    async def get_portal_session(self, id_hash: str) -> PortalSessionRow | None: ...
    async def count_events_since(self, tenant_id: str, type: str, since: str) -> tuple[int, str | None]: ...
    async def hourly_event_counts(
        self, tenant_id: str, error_type: str, since: str, until: str
    ) -> list[tuple[str, int, int]]: ...


class PortalTx(PortalReader, Protocol):
    async def insert_portal_link(self, token_hash: str, tenant_id: str, created: str, expires: str) -> None: ...
    async def use_portal_link(self, token_hash: str, when: str) -> bool: ...
    async def insert_portal_session(self, row: PortalSessionRow) -> None: ...
    async def touch_portal_session(self, id_hash: str, when: str) -> None: ...
    async def delete_portal_session(self, id_hash: str) -> bool: ...
    async def prune_portal(self, *, now: str, idle_before: str) -> int: ...


# foundations (issue 8) -----------------------------------------------------------------------
class MemberReader(Protocol):
    async def members_of_groups(self, tenant_id: str, group_ids: list[str]) -> dict[str, list[Member]]: ...


class FastReader(Protocol):
    # performance (issue 14): hot-path reads in fewer statements
    async def get_user_with_groups(self, tenant_id: str, user_id: str) -> tuple[ResourceRow, list[Member]] | None:
        """A user and its direct groups (ordered as ``groups_of_users`` orders them) in one statement."""
        ...


class Reader(FeedReader, PortalReader, FastReader, MemberReader, Protocol):
    async def get_tenant(self, tenant_id: str) -> TenantRow | None: ...
    async def list_tenants(self) -> list[TenantRow]: ...
    async def find_api_key_tenant(self, key_hash: str) -> tuple[ApiKeyRow, str, TenantRow] | None: ...
    async def list_api_keys(self, tenant_id: str) -> list[ApiKeyRow]: ...
    async def get_user(self, tenant_id: str, user_id: str) -> ResourceRow | None: ...
    async def get_user_by_name(self, tenant_id: str, user_name: str) -> ResourceRow | None: ...
    async def query_users(self, tenant_id: str, query: Query) -> Page: ...
    async def get_group(self, tenant_id: str, group_id: str) -> ResourceRow | None: ...
    async def query_groups(self, tenant_id: str, query: Query) -> Page: ...
    async def list_members(self, tenant_id: str, group_id: str) -> list[Member]: ...
    async def groups_of_users(
        self, tenant_id: str, user_ids: list[str], *, seq_range: tuple[int, int] | None = None
    ) -> dict[str, list[Member]]:
        """Each user's direct groups. ``seq_range``: the lowest and highest seq of these users, which
        lets a store read the memberships of a narrow range at once instead of user by user."""
        ...
    async def existing_ids(self, tenant_id: str, ids: list[str]) -> dict[str, str]: ...
    async def list_events(
        self, tenant_id: str, *, type: str | None = None, limit: int = 50, before_seq: int | None = None
    ) -> list[EventRow]: ...
    async def get_user_roles(self, tenant_id: str, user_ids: list[str]) -> dict[str, list[str]]:
        """The stored roles of those of ``user_ids`` that exist."""
        ...
    async def member_group_roles(
        self,
        tenant_id: str,
        mapping: list[tuple[str, str]],
        *,
        user_ids: list[str] | None = None,
        exclude_group: str | None = None,
    ) -> dict[str, set[str]]:
        """Roles each User member gets from its groups under ``mapping`` ((group key, role) pairs).

        A key matches a group whose displayName equals it case-insensitively, or whose id equals it.
        Only users with at least one mapped group appear; ``user_ids`` limits the users looked at,
        ``exclude_group`` ignores one group (a group about to be deleted).
        """
        ...
    async def role_derived_users(self, tenant_id: str, *, roles_not: list[str]) -> dict[str, list[str]]:
        """Current roles of the users whose roles come from SCIM data (provisioned by SCIM, or a member
        of some group) and whose stored roles differ from ``roles_not``."""
        ...

    # --- operations (issue 11) ---
    async def schema_versions(self) -> set[int]:
        """The migration versions applied to this database."""
        ...
    async def count_activity(self) -> int:
        """Activity events stored, all tenants (the metrics page's activity backlog)."""
        ...

    # custom schema extensions (gateway/store/schemas.py) --------------------------------------
    async def list_tenant_schemas(self, tenant_id: str) -> list[SchemaRow]: ...
    async def get_tenant_schema(self, tenant_id: str, urn: str) -> SchemaRow | None:
        """The declaration of ``urn`` (compared case-insensitively), or None."""
        ...


class Tx(Reader, FeedTx, PortalTx, Protocol):
    async def insert_tenant(self, row: TenantRow) -> None: ...
    async def update_tenant(self, tenant_id: str, **fields: Any) -> None: ...
    async def insert_api_key(self, row: ApiKeyRow, key_hash: str) -> None: ...
    async def revoke_api_key(self, tenant_id: str, key_id: str, when: str) -> bool: ...
    async def touch_api_key(self, key_id: str, when: str) -> None: ...
    async def insert_user(self, tenant_id: str, row: ResourceRow) -> None: ...
    async def update_user(self, tenant_id: str, row: ResourceRow) -> None: ...
    async def set_user_roles(self, tenant_id: str, roles_by_user: dict[str, list[str]]) -> None: ...
    async def delete_user(self, tenant_id: str, user_id: str) -> bool: ...
    async def insert_group(self, tenant_id: str, row: ResourceRow) -> None: ...
    async def update_group(self, tenant_id: str, row: ResourceRow) -> None: ...
    async def touch_group(self, tenant_id: str, group_id: str, when: str) -> int | None: ...
    async def delete_group(self, tenant_id: str, group_id: str) -> bool: ...
    async def add_members(self, tenant_id: str, group_id: str, members: list[Member]) -> int: ...
    async def remove_members(self, tenant_id: str, group_id: str, member_ids: list[str]) -> list[str]: ...
    async def clear_members(self, tenant_id: str, group_id: str) -> list[str]: ...
    async def insert_event(self, tenant_id: str, type: str, created: str, data: dict[str, Any]) -> None: ...
    async def prune_events(self, tenant_id: str, *, older_than: str | None, keep: int | None) -> int: ...
    # --- operations (issue 11) ---
    async def delete_tenant(self, tenant_id: str) -> dict[str, int] | None:
        """Delete the tenant and every row of every table keyed by its tenant_id; the rows removed per
        table (``tenants`` included), or None when there is no such tenant."""
        ...

    # activity retention by size (gateway/store/activity_size.py) ----------------------------------
    async def prune_events_by_size(self, tenant_id: str, max_bytes: int) -> int: ...

    # custom schema extensions (gateway/store/schemas.py) --------------------------------------
    async def put_tenant_schema(self, tenant_id: str, row: SchemaRow) -> None: ...
    async def lock_tenant(self, tenant_id: str) -> None:
        """Hold the tenant row until commit: writers that check what no index enforces take turns."""
        ...
    async def delete_tenant_schema(self, tenant_id: str, urn: str) -> bool: ...
    async def bump_schema_version(self, tenant_id: str) -> int:
        """Record that the tenant's schemas changed; every process's cache compares the tenant row's version."""
        ...


class Store(Protocol):
    dialect: str
    # --- operations (issue 11) ---
    applied_migrations: list[int]
    """The migrations the last ``open()`` applied (empty when the schema was already current)."""
    on_timing: Callable[[str, float], None] | None
    """Called with ("read" | "write", seconds) after each ``read()``/``write()`` block (metrics)."""
    # --- change feed (issue 10) ---
    emit_events: bool  # False: write transactions drop their change-feed events (events switched off)

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def read(self) -> AbstractAsyncContextManager[Reader]: ...
    def write(self) -> AbstractAsyncContextManager[Tx]: ...
