"""The integration page ("Tools > Integration > General"): whether the CRM integration is
paused, the bridge workers the ESP has heard from, and the last error they reported.

While paused, the ESP refuses every write of the integration (campaign upserts, recipient
chunks, finalize) with ``INTEGRATION_PAUSED`` and a ``Retry-After``: nothing is lost, the
bridge retries later. Workers learn of the pause from their heartbeat's answer.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailshot.contracts.heartbeats import HeartbeatIn, HeartbeatOut, IntegrationPage, WorkerPublic
from mailshot.core.db.engine import db_now
from mailshot.core.db.sqlhelpers import upsert
from mailshot.esp.errors import INTEGRATION_PAUSED, RetryLaterError
from mailshot.esp.models import IntegrationState, IntegrationWorker

#: The integration state is one row with this id.
STATE_ID = 1
#: "Running" means some worker was heard from within this long.
RUNNING_WITHIN = timedelta(seconds=60)
#: What the ESP tells a client to wait while the integration is paused.
PAUSED_RETRY_AFTER_SECONDS = 30


def ensure_not_paused(session: Session) -> None:
    """Raise ``INTEGRATION_PAUSED`` (503, Retry-After) if the integration is paused."""
    row = session.execute(
        select(IntegrationState.paused, IntegrationState.paused_at).where(
            IntegrationState.id == STATE_ID
        )
    ).first()
    if row is not None and row.paused:
        raise RetryLaterError(
            INTEGRATION_PAUSED,
            retry_after=PAUSED_RETRY_AFTER_SECONDS,
            paused_at=row.paused_at.isoformat() if row.paused_at else "an unknown time",
        )


def _ensure_state(session: Session) -> None:
    session.execute(
        upsert(session, IntegrationState)
        .values(id=STATE_ID, paused=False)
        .on_conflict_do_nothing(index_elements=["id"])
    )


def is_paused(session: Session) -> bool:
    paused = session.scalar(select(IntegrationState.paused).where(IntegrationState.id == STATE_ID))
    return bool(paused)


def heartbeat(session: Session, beat: HeartbeatIn) -> HeartbeatOut:
    """Record that a worker is alive (and its last error, if any); say whether to pause."""
    now = db_now(session)
    stmt = upsert(session, IntegrationWorker).values(
        worker_id=beat.worker_id,
        started_at=now,
        last_heartbeat_at=now,
        host=beat.host,
        version=beat.version,
        last_error=beat.last_error,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["worker_id"],
            set_={
                "last_heartbeat_at": stmt.excluded.last_heartbeat_at,
                "host": func.coalesce(stmt.excluded.host, IntegrationWorker.host),
                "version": func.coalesce(stmt.excluded.version, IntegrationWorker.version),
                "last_error": stmt.excluded.last_error,
            },
        )
    )
    if beat.last_error:
        _ensure_state(session)
        session.execute(
            update(IntegrationState)
            .where(IntegrationState.id == STATE_ID)
            .values(last_error=beat.last_error, last_error_at=now)
        )
    paused = is_paused(session)
    session.commit()
    return HeartbeatOut(paused=paused)


def set_paused(session: Session, *, paused: bool, actor: str) -> IntegrationPage:
    """Pause or resume the integration (an administrator's action)."""
    _ensure_state(session)
    values: dict[str, object] = {"paused": paused}
    values.update(
        {"paused_at": db_now(session), "paused_by": actor}
        if paused
        else {"paused_at": None, "paused_by": None}
    )
    session.execute(
        update(IntegrationState)
        .where(IntegrationState.id == STATE_ID, IntegrationState.paused != paused)
        .values(**values)
    )
    session.commit()
    return page(session)


def page(session: Session) -> IntegrationPage:
    """The integration page as data."""
    now = db_now(session)
    state = session.get(IntegrationState, STATE_ID)
    workers = session.scalars(
        select(IntegrationWorker).order_by(
            IntegrationWorker.last_heartbeat_at.desc(), IntegrationWorker.worker_id
        )
    ).all()
    last_seen = max((w.last_heartbeat_at for w in workers), default=None)
    paused = bool(state and state.paused)
    return IntegrationPage(
        running=not paused and last_seen is not None and now - last_seen <= RUNNING_WITHIN,
        paused=paused,
        paused_at=state.paused_at if state else None,
        last_seen_at=last_seen,
        last_error=state.last_error if state else None,
        last_error_at=state.last_error_at if state else None,
        workers=[
            WorkerPublic(
                worker_id=w.worker_id,
                last_heartbeat_at=w.last_heartbeat_at,
                host=w.host,
                version=w.version,
            )
            for w in workers
        ],
    )
