"""Migrations and models agree, on both engines, and timestamps come back aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.db.migrate import check, upgrade
from mailshot.core.settings import Settings
from mailshot.crm.models import Organisation


@pytest.mark.parametrize("part", ["crm", "esp"])
def test_models_match_migrations(settings: Settings, part: str) -> None:
    url = settings.crm_db_url() if part == "crm" else settings.esp_db_url()
    upgrade(part, url)  # type: ignore[arg-type]  # idempotent at head
    check(part, url)  # type: ignore[arg-type]  # raises if models and migrations drift


def test_timestamps_round_trip_aware_in_utc(settings: Settings) -> None:
    engine = make_unpooled_engine(settings.crm_db_url())
    sessions = make_sessionmaker(engine)
    paris = timezone(timedelta(hours=2))
    written = datetime(2026, 5, 1, 14, 30, 15, 123456, tzinfo=paris)
    with sessions() as s:
        org = Organisation(name="Tz", created_at=written, updated_at=written)
        s.add(org)
        s.commit()
        org_id = org.id
    with sessions() as s:
        back = s.scalar(select(Organisation.created_at).where(Organisation.id == org_id))
    engine.dispose()
    assert back is not None
    assert back.tzinfo is not None
    assert back == written
    assert back.astimezone(UTC).hour == 12
