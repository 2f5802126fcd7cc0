"""Timestamps: fixed-width UTC ISO 8601 text, so stored values sort and compare as strings."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> str:
    return format_time(datetime.now(timezone.utc))


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
