"""Claiming a unit: the cheap unlocked look for one that is due, and the claim itself,
one short transaction that commits.

The candidates are ``pending`` units that are due, ``leased`` units whose lease lapsed (a
takeover) and ``waiting`` units whose job reached the state their kind waits for, of
active jobs; least-served job first (``units_leased``), then job id, then unit id. On
PostgreSQL the candidate row is locked with ``FOR UPDATE OF <units> SKIP LOCKED``, so
concurrent claims pick different units without waiting; on SQLite the write transaction
(``BEGIN IMMEDIATE``) makes the claim exclusive. Lease times come from the database's
clock. A unit that lapsed more than ``max_takeovers`` times fails its job instead.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from mailshot.queue.finish import end_job
from mailshot.queue.spec import Fault, Lease, QueueSpec, current_time
from mailshot.queue.states import LeaseOutcome, UnitState

#: Candidates skipped in one claim because their job failed on the spot.
_SCAN = 20


def is_due(spec: QueueSpec, session: Session, *, lane: ColumnElement[bool] | None = None) -> bool:
    """Whether a unit is due for :func:`claim`, read without locking anything: an idle
    worker looks here first, so it does not queue for SQLite's write lock (ahead of other
    writers) only to find nothing."""
    return _candidate(spec, session, current_time(session), lane, lock=False) is not None


def _candidate(
    spec: QueueSpec,
    session: Session,
    now: datetime,
    lane: ColumnElement[bool] | None = None,
    *,
    lock: bool = True,
) -> Any:
    units, jobs = spec.tables.units, spec.tables.jobs
    ready = [
        and_(
            units.c.state == UnitState.PENDING,
            or_(units.c.available_at.is_(None), units.c.available_at <= now),
        ),
        and_(units.c.state == UnitState.LEASED, units.c.lease_expires_at < now),
        *(
            and_(units.c.state == UnitState.WAITING, units.c.kind == kind, jobs.c.state == state)
            for kind, state in spec.waits_for.items()
        ),
    ]
    states = (UnitState.PENDING, UnitState.LEASED, UnitState.WAITING)
    query = (
        select(
            units.c.id,
            units.c.job_id,
            units.c.kind,
            units.c.state,
            *spec.unit_cols(),
            units.c.lease_token,
            units.c.lease_expires_at,
            units.c.takeovers,
        )
        .select_from(units.join(jobs, jobs.c.id == units.c.job_id))
        .where(
            units.c.state.in_(states if spec.waits_for else states[:2]),
            jobs.c.state.in_(spec.moves.active),
            or_(*ready),
        )
        .order_by(jobs.c.units_leased, jobs.c.id, units.c.id)
        .limit(1)
    )
    if lane is not None:
        query = query.where(lane)
    if lock:
        query = query.with_for_update(of=units, skip_locked=True)
    return session.execute(query).first()


def claim(
    spec: QueueSpec,
    session: Session,
    *,
    worker_id: str,
    lease_seconds: float,
    max_takeovers: int,
    lane: ColumnElement[bool] | None = None,
    now: datetime | None = None,
) -> Lease | None:
    """Claim the next due unit (of ``lane``, an extra condition on units and jobs, if
    given) for ``worker_id``; commit; None when there is none."""
    for _ in range(_SCAN):
        at = current_time(session, now)
        cand = _candidate(spec, session, at, lane)
        if cand is None:
            session.rollback()
            return None
        if cand.state == UnitState.LEASED and cand.takeovers + 1 > max_takeovers:
            _fail_for_takeovers(spec, session, cand, at)
            session.commit()
            continue
        leased = _claim(spec, session, cand, worker_id, lease_seconds, at)
        session.commit()
        return leased
    session.rollback()
    return None


def _expire(spec: QueueSpec, session: Session, cand: Row[Any]) -> None:
    log = spec.tables.lease_log
    session.execute(
        update(log)
        .where(log.c.unit_id == cand.id, log.c.lease_token == cand.lease_token)
        .values(ended_at=cand.lease_expires_at, outcome=LeaseOutcome.EXPIRED)
    )


def _fail_for_takeovers(spec: QueueSpec, session: Session, cand: Row[Any], now: datetime) -> None:
    _expire(spec, session, cand)
    fault = Fault.rendered(
        spec.errors.unit_kills_workers, step=spec.describe(cand), takeovers=cand.takeovers + 1
    )
    end_job(
        spec, session, cand.job_id, spec.moves.failed, now=now, fault=fault, failing_unit_id=cand.id
    )


def _claim(
    spec: QueueSpec,
    session: Session,
    cand: Row[Any],
    worker_id: str,
    lease_seconds: float,
    now: datetime,
) -> Lease:
    units, jobs = spec.tables.units, spec.tables.jobs
    token = uuid.uuid4().hex
    expires = now + timedelta(seconds=lease_seconds)
    takeover = cand.state == UnitState.LEASED
    attempts = session.execute(
        update(units)
        .where(units.c.id == cand.id)
        .values(
            state=UnitState.LEASED,
            lease_token=token,
            lease_owner=worker_id[:255],
            lease_expires_at=expires,
            takeovers=units.c.takeovers + (1 if takeover else 0),
        )
        .returning(units.c.attempts)
    ).scalar_one()
    if takeover:
        _expire(spec, session, cand)
    hooks = spec.kinds[cand.kind]
    job = session.execute(
        update(jobs)
        .where(jobs.c.id == cand.job_id)
        .values(
            units_leased=jobs.c.units_leased + 1,
            takeovers=jobs.c.takeovers + (1 if takeover else 0),
            started_at=func.coalesce(jobs.c.started_at, now),
            **hooks.job_values_on_claim,
        )
        .returning(jobs.c.id, *spec.job_cols())
    ).one()
    lease = Lease(
        unit_id=cand.id,
        job_id=cand.job_id,
        kind=cand.kind,
        token=token,
        expires_at=expires,
        lease_seconds=lease_seconds,
        attempt=attempts + 1,
        takeover=takeover,
        unit=cand,
        job=job,
    )
    if hooks.on_claim is not None:
        hooks.on_claim(session, lease)
    session.execute(
        insert(spec.tables.lease_log).values(
            job_id=cand.job_id,
            unit_id=cand.id,
            lease_token=token,
            worker_id=worker_id[:255],
            leased_at=now,
        )
    )
    return lease
