"""What the CRM knows of the ESP's limits: the JSON the bridge read from
``GET /esp/api/v1/limits``, stored as it came (one ``crm_settings`` row, key
:data:`SETTING_KEY`) with the time it was read and the time it arrived.

The CRM never hard-codes what the ESP accepts: :func:`campaign_limits` reads the stored
answer into :class:`EspLimits`, and :func:`load` answers None while the CRM has never
heard from the ESP (the preflight then leaves the name length to the ESP and says so).
Unknown keys of the ESP's answer are kept and ignored, so the ESP may add limits freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import upsert
from mailshot.crm.models import CrmSetting

SETTING_KEY = "esp_limits"


@dataclass(frozen=True)
class EspLimits:
    """The limits the preflight checks a mailshot against (None: the ESP did not say)."""

    name_max_length: int | None
    subject_max_length: int | None
    from_name_max_length: int | None
    from_address_max_length: int | None
    #: Fields the ESP requires (``content`` means HTML or text); None: not said.
    required: frozenset[str] | None


@dataclass(frozen=True)
class StoredLimits:
    """The ESP's answer as stored, with when the bridge read it and when the CRM got it."""

    limits: dict[str, Any]
    read_at: datetime | None
    received_at: datetime
    reported_by: str | None

    @property
    def campaign(self) -> EspLimits:
        return campaign_limits(self.limits)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def campaign_limits(raw: dict[str, Any]) -> EspLimits:
    """The campaign limits in the ESP's answer, tolerant of missing or odd values."""
    campaign = raw.get("campaign")
    if not isinstance(campaign, dict):
        campaign = {}
    required = campaign.get("required")
    return EspLimits(
        name_max_length=_positive_int(campaign.get("name_max_length")),
        subject_max_length=_positive_int(campaign.get("subject_max_length")),
        from_name_max_length=_positive_int(campaign.get("from_name_max_length")),
        from_address_max_length=_positive_int(campaign.get("from_address_max_length")),
        required=(frozenset(str(f) for f in required) if isinstance(required, list) else None),
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def load(session: Session) -> StoredLimits | None:
    """The stored limits, or None when the CRM has never received them."""
    value = session.scalar(select(CrmSetting.value).where(CrmSetting.key == SETTING_KEY))
    if value is None:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("limits"), dict):
        return None
    received = _parse_time(data.get("received_at")) or utcnow()
    reporter = data.get("reported_by")
    return StoredLimits(
        limits=data["limits"],
        read_at=_parse_time(data.get("read_at")),
        received_at=received,
        reported_by=str(reporter) if reporter is not None else None,
    )


def store(
    session: Session,
    limits: dict[str, Any],
    *,
    read_at: datetime | None,
    reported_by: str | None,
    now: datetime | None = None,
) -> StoredLimits:
    """Keep the ESP's limits (replacing the previous answer) and commit."""
    received = now or utcnow()
    payload = {
        "limits": limits,
        "read_at": read_at.isoformat() if read_at else None,
        "received_at": received.isoformat(),
        "reported_by": reported_by,
    }
    table = CrmSetting.__table__
    stmt = upsert(session, CrmSetting).values(key=SETTING_KEY, value=orjson.dumps(payload).decode())
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.key], set_={"value": stmt.excluded.value}
        )
    )
    session.commit()
    return StoredLimits(
        limits=limits, read_at=read_at, received_at=received, reported_by=reported_by
    )
