"""Timezone-aware time: every timestamp in mailshot is UTC and aware; naive ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def require_aware(value: datetime, what: str = "timestamp") -> datetime:
    """Return ``value`` in UTC, refusing a naive datetime with a clear message."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must carry a timezone (for example 2026-01-31T09:00:00Z)")
    return value.astimezone(UTC)
