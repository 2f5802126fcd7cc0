"""How a stored SCIM document maps onto indexed columns: the one place both backends and the filter compiler agree on.

``data`` holds the resource as the client set it, with canonical attribute names, extension
attributes under their schema URN, and without ``id``, ``meta``, ``groups``, ``members`` and ``password``
(those live in columns, child tables, or nowhere).
"""

from __future__ import annotations

from typing import Any


def fold(value: str) -> str:
    """The case folding used for every case-insensitive indexed column and comparison."""
    return value.lower()


def primary_email(data: dict[str, Any]) -> str | None:
    emails = [e for e in data.get("emails") or () if isinstance(e, dict) and isinstance(e.get("value"), str)]
    if not emails:
        return None
    chosen = next((e for e in emails if e.get("primary") is True), emails[0])
    return str(chosen["value"])


def user_columns(data: dict[str, Any]) -> dict[str, Any]:
    """Indexed columns of the users table derived from a user's ``data``."""
    email = primary_email(data)
    display = data.get("displayName")
    return {
        "user_name": data["userName"],
        "user_name_ci": fold(data["userName"]),
        "external_id": data.get("externalId"),
        "display_name": display if isinstance(display, str) else None,
        "display_name_ci": fold(display) if isinstance(display, str) else None,
        "active": data.get("active") is not False,
        "email_ci": fold(email) if email else None,
    }


def user_email_rows(data: dict[str, Any]) -> list[tuple[str, str | None, bool]]:
    """(value_ci, type, is_primary) for the user_emails child table."""
    rows = []
    for e in data.get("emails") or ():
        if isinstance(e, dict) and isinstance(e.get("value"), str):
            t = e.get("type")
            rows.append((fold(e["value"]), t if isinstance(t, str) else None, e.get("primary") is True))
    return rows


def group_columns(data: dict[str, Any]) -> dict[str, Any]:
    """Indexed columns of the groups table derived from a group's ``data``."""
    return {
        "display_name": data["displayName"],
        "display_name_ci": fold(data["displayName"]),
        "external_id": data.get("externalId"),
    }


# A membership row. member_seq is the user member's own seq (NULL for a Group member), looked up in
# the statement itself, so no writer can leave it out; list pages read a page's memberships by it.
MEMBER_INSERT_COLUMNS = "(tenant_id, group_id, member_id, member_type, member_seq)"
MEMBER_VALUES = "(?, ?, ?, ?, (SELECT seq FROM users WHERE tenant_id = ? AND id = ?))"


def member_values(tenant_id: str, group_id: str, member_id: str, member_type: str) -> tuple[str, ...]:
    """The parameters of one :data:`MEMBER_VALUES` row."""
    return (tenant_id, group_id, member_id, member_type, tenant_id, member_id)
