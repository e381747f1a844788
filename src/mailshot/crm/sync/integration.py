"""The CRM's view of the bridge: worker heartbeats (upserted by worker id) and whether any
worker is alive, so a queued mailshot that is not moving can say why."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailshot.crm.sync.schemas import IntegrationPublic, WorkerHeartbeat, WorkerPublic
from mailshot.crm.sync.tables import current_time, is_postgres, workers

#: A worker is alive if it sent a heartbeat within this long.
ALIVE_WITHIN = timedelta(seconds=60)


def record_heartbeat(session: Session, beat: WorkerHeartbeat, now: datetime | None = None) -> None:
    at = current_time(session, now)
    dialect: Any = postgresql if is_postgres(session) else sqlite
    stmt = dialect.insert(workers).values(
        worker_id=beat.worker_id,
        started_at=at,
        last_heartbeat_at=at,
        host=beat.host,
        version=beat.version,
        last_error=beat.last_error,
        active_units=beat.active_units,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[workers.c.worker_id],
        set_={
            "last_heartbeat_at": at,
            "host": stmt.excluded.host,
            "version": stmt.excluded.version,
            "last_error": stmt.excluded.last_error,
            "active_units": stmt.excluded.active_units,
        },
    )
    session.execute(stmt)
    session.commit()


def integration(session: Session, now: datetime | None = None) -> IntegrationPublic:
    at = current_time(session, now)
    rows = session.execute(
        select(workers).order_by(workers.c.last_heartbeat_at.desc()).limit(200)
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
            alive=at - r.last_heartbeat_at <= ALIVE_WITHIN,
        )
        for r in rows
    ]
    return IntegrationPublic(
        running=any(w.alive for w in items),
        last_heartbeat_at=items[0].last_heartbeat_at if items else None,
        workers=items,
    )
