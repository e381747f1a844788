"""Whether a unit is still held: the one check every call about a leased unit makes.

A unit is held by whoever has its current ``lease_token`` while it is ``leased``. A call
that changes the unit matches on both in its own UPDATE (:func:`held_by`); a call that
works under the lease locks the unit and its job and checks them (:func:`hold`). When
either finds nothing, :func:`raise_why` says why: the unit is gone, its job has ended, or
its lease was lost (taken over after it lapsed).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, Row, and_, select, update
from sqlalchemy.orm import Session

from mailshot.core.errors import NOT_FOUND, AppError
from mailshot.queue.spec import QueueSpec, current_time
from mailshot.queue.states import UnitState


def held_by(spec: QueueSpec, unit_id: int, token: str) -> ColumnElement[bool]:
    """The unit ``unit_id``, while it is leased with ``token``."""
    units = spec.tables.units
    return and_(
        units.c.id == unit_id, units.c.lease_token == token, units.c.state == UnitState.LEASED
    )


def raise_why(spec: QueueSpec, session: Session, unit_id: int) -> NoReturn:
    """Explain why a call about ``unit_id`` found it not held: gone, job ended, or lease
    lost (rolls the transaction back)."""
    units, jobs = spec.tables.units, spec.tables.jobs
    session.rollback()
    row = session.execute(
        select(units.c.state, units.c.job_id, jobs.c.state.label("job_state"))
        .join(jobs, jobs.c.id == units.c.job_id)
        .where(units.c.id == unit_id)
    ).first()
    session.rollback()
    if row is None:
        raise AppError(NOT_FOUND, what=spec.errors.unit_noun, id=unit_id)
    if row.job_state not in spec.moves.active or row.state in (
        UnitState.CANCELLED,
        UnitState.FAILED,
    ):
        raise AppError(spec.errors.job_ended, job_id=row.job_id, state=row.job_state)
    raise AppError(spec.errors.lease_lost, unit_id=unit_id)


def hold(
    spec: QueueSpec,
    session: Session,
    unit_id: int,
    token: str,
    *,
    kind: str | None = None,
    columns: tuple[Any, ...] = (),
) -> Row[Any]:
    """Lock the unit ``unit_id`` and its job (on PostgreSQL; SQLite's write transaction is
    exclusive already) and check that the unit is held with ``token``, is of ``kind`` (if
    given) and its job is active; answer ``job_id``, ``kind`` and ``job_state`` with
    ``columns``, or raise why not (the transaction rolled back)."""
    units, jobs = spec.tables.units, spec.tables.jobs
    row = session.execute(
        select(
            units.c.job_id,
            units.c.kind,
            units.c.state,
            units.c.lease_token,
            jobs.c.state.label("job_state"),
            *columns,
        )
        .join(jobs, jobs.c.id == units.c.job_id)
        .where(units.c.id == unit_id)
        .with_for_update()
    ).first()
    if row is None or row.state != UnitState.LEASED or row.lease_token != token:
        raise_why(spec, session, unit_id)
    if kind is not None and row.kind != kind:
        session.rollback()
        raise AppError(spec.errors.wrong_kind, unit_id=unit_id, kind=row.kind, expected=kind)
    if row.job_state not in spec.moves.active:
        session.rollback()
        raise AppError(spec.errors.job_ended, job_id=row.job_id, state=row.job_state)
    return row


def heartbeat(
    spec: QueueSpec,
    session: Session,
    unit_id: int,
    token: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> datetime:
    """Extend the lease of ``unit_id`` held with ``token``; commit; return the new expiry
    (raises why not, and changes nothing, when the lease is lost)."""
    units = spec.tables.units
    expires = current_time(session, now) + timedelta(seconds=lease_seconds)
    held = session.execute(
        update(units)
        .where(held_by(spec, unit_id, token))
        .values(lease_expires_at=expires)
        .returning(units.c.id)
    ).first()
    if held is None:
        raise_why(spec, session, unit_id)
    session.commit()
    return expires
