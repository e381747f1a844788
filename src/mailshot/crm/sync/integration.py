"""The CRM's view of the bridge: worker heartbeats (upserted by worker id), whether any
worker is alive, and what the workers last saw of the ESP (reachable, paused since when),
relayed in their heartbeats, so a mailshot that is not moving can say why without the CRM
ever calling the ESP. A heartbeat that says the ESP answers and its integration runs also
makes the units that were waiting out a pause or a refused key due at once
(:func:`release_waiting_units`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailshot.contracts.heartbeats import WorkerHeartbeat
from mailshot.crm.sync.schemas import IntegrationPublic, IntegrationSummary, WorkerPublic
from mailshot.crm.sync.tables import current_time, is_postgres, units, workers
from mailshot.queue import UnitState

#: A worker is alive if it sent a heartbeat within this long (and has not said goodbye).
ALIVE_WITHIN = timedelta(seconds=60)
#: The code of the ESP's refusal while its integration is paused (part of its API).
ESP_PAUSED_CODE = "INTEGRATION_PAUSED"
#: The codes of a refused API key (either side's) start with this.
KEY_REFUSED_PREFIX = "AUTH_"


def record_heartbeat(session: Session, beat: WorkerHeartbeat, now: datetime | None = None) -> None:
    at = current_time(session, now)
    dialect: Any = postgresql if is_postgres(session) else sqlite
    esp_ok_at = at if beat.esp_reachable else None
    stmt = dialect.insert(workers).values(
        worker_id=beat.worker_id,
        started_at=at,
        last_heartbeat_at=at,
        host=beat.host,
        version=beat.version,
        last_error=beat.last_error,
        active_units=beat.active_units,
        stopped_at=at if beat.stopping else None,
        esp_reachable=beat.esp_reachable,
        esp_error=beat.esp_error,
        esp_ok_at=esp_ok_at,
        esp_paused=beat.esp_paused,
        esp_paused_at=beat.esp_paused_at,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[workers.c.worker_id],
        set_={
            "last_heartbeat_at": at,
            "host": stmt.excluded.host,
            "version": stmt.excluded.version,
            "last_error": stmt.excluded.last_error,
            "active_units": stmt.excluded.active_units,
            "stopped_at": stmt.excluded.stopped_at,
            "esp_reachable": stmt.excluded.esp_reachable,
            "esp_error": stmt.excluded.esp_error,
            # Keep the last time the ESP answered when this beat says it did not.
            "esp_ok_at": case(
                (stmt.excluded.esp_ok_at.is_(None), workers.c.esp_ok_at),
                else_=stmt.excluded.esp_ok_at,
            ),
            "esp_paused": stmt.excluded.esp_paused,
            "esp_paused_at": stmt.excluded.esp_paused_at,
        },
    )
    session.execute(stmt)
    if beat.esp_reachable and beat.esp_paused is False:
        release_waiting_units(session, at)
    session.commit()


def release_waiting_units(session: Session, now: datetime) -> int:
    """Make the units that wait because of the integration, not because of themselves,
    due at ``now`` (in the caller's transaction; answers how many): those the ESP refused
    while its integration was paused, and those refused for the bridge's key. Each waits
    out a fixed delay (the ESP's ``Retry-After``, the bridge's wait after a refused key)
    that says nothing of when the integration is resumed or the key fixed. A heartbeat
    the CRM accepted, from a worker whose last call to the ESP was answered by a running
    integration, says both are fixed: the syncs carry on at once, not at the end of that
    wait."""
    waiting = and_(
        units.c.state == UnitState.PENDING,
        units.c.available_at > now,
        or_(
            units.c.last_error_code == ESP_PAUSED_CODE,
            units.c.last_error_code.startswith(KEY_REFUSED_PREFIX, autoescape=True),
        ),
    )
    # Looked for first: an UPDATE of the units, even of none, wakes every waiting lease.
    if session.execute(select(units.c.id).where(waiting).limit(1)).first() is None:
        return 0
    result = session.execute(update(units).where(waiting).values(available_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def integration(
    session: Session, now: datetime | None = None, *, limit: int = 200
) -> IntegrationPublic:
    """The workers heard from, most recent first (at most ``limit``), and what they say."""
    at = current_time(session, now)
    rows = session.execute(
        select(workers).order_by(workers.c.last_heartbeat_at.desc()).limit(limit)
    ).all()
    items = [
        WorkerPublic(
            worker_id=r.worker_id,
            started_at=r.started_at,
            last_heartbeat_at=r.last_heartbeat_at,
            host=r.host,
            version=r.version,
            last_error=r.last_error,
            active_units=r.active_units,
            alive=r.stopped_at is None and at - r.last_heartbeat_at <= ALIVE_WITHIN,
            stopped_at=r.stopped_at,
            esp_reachable=r.esp_reachable,
            esp_error=r.esp_error,
            esp_ok_at=r.esp_ok_at,
            esp_paused=r.esp_paused,
            esp_paused_at=r.esp_paused_at,
        )
        for r in rows
    ]
    # What the ESP said, as the most recently heard worker that reported it relayed it.
    latest = next((w for w in items if w.esp_reachable is not None), None)
    return IntegrationPublic(
        running=any(w.alive for w in items),
        last_heartbeat_at=items[0].last_heartbeat_at if items else None,
        workers=items,
        paused=latest.esp_paused if latest else None,
        paused_at=latest.esp_paused_at if latest else None,
        esp_reachable=latest.esp_reachable if latest else None,
        esp_error=latest.esp_error if latest else None,
        esp_ok_at=max((w.esp_ok_at for w in items if w.esp_ok_at), default=None),
        last_error=items[0].last_error if items else None,
    )


def summary(view: IntegrationPublic) -> IntegrationSummary:
    """The few facts every mailshot's status carries about the integration."""
    return IntegrationSummary(
        running=view.running,
        last_heartbeat_at=view.last_heartbeat_at,
        paused=view.paused,
        paused_at=view.paused_at,
        esp_reachable=view.esp_reachable,
        last_error=view.last_error,
    )
