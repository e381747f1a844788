"""Settings defaults and validation; timestamps that refuse naive datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mailshot.core.clock import require_aware
from mailshot.core.db.engine import normalise_url
from mailshot.core.settings import Settings


def test_heartbeat_must_be_shorter_than_lease() -> None:
    with pytest.raises(ValidationError, match="heartbeat_seconds"):
        Settings(lease_seconds=5, heartbeat_seconds=10)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        require_aware(datetime(2026, 1, 1))
    assert require_aware(datetime(2026, 1, 1, tzinfo=UTC)).tzinfo is UTC


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
