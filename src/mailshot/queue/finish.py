"""Finishing a unit: complete it, fail an attempt at it (transient: back to pending after
a back-off, until the retry policy gives up; permanent: its job fails), or fail its job;
and :func:`end_job`, the one function that ends a job, checked against the part's
:class:`~mailshot.queue.JobMoves`.

Each call about a unit matches on its lease (:func:`mailshot.queue.held.held_by`) in its
first UPDATE, so a worker whose lease was lost changes nothing; completing again with the
same token is a no-op. What the job does when a unit of a kind completes is the part's
(:class:`~mailshot.queue.KindHooks`), called in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from mailshot.queue.held import held_by, raise_why
from mailshot.queue.retry import RetryPolicy
from mailshot.queue.spec import Fault, Outcome, QueueSpec, current_time
from mailshot.queue.states import UNIT_OPEN, IllegalMoveError, LeaseOutcome, UnitState


def _end_lease(
    spec: QueueSpec, session: Session, unit_id: int, token: str, at: datetime, outcome: str
) -> None:
    log = spec.tables.lease_log
    session.execute(
        update(log)
        .where(log.c.unit_id == unit_id, log.c.lease_token == token)
        .values(ended_at=at, outcome=outcome)
    )


def complete(
    spec: QueueSpec,
    session: Session,
    unit_id: int,
    token: str,
    *,
    report: Any = None,
    unit_values: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Record that the unit's work is done (with the part's ``unit_values``), have its
    kind's hook move the job on (given ``report``); commit. Repeating it with the same
    token changes nothing; with a lost lease it raises why and changes nothing."""
    units = spec.tables.units
    at = current_time(session, now)
    done = session.execute(
        update(units)
        .where(held_by(spec, unit_id, token))
        .values(state=UnitState.DONE, done_at=at, lease_expires_at=None, **(unit_values or {}))
        .returning(units.c.job_id, units.c.kind, *spec.unit_cols())
    ).first()
    if done is None:
        return _repeated(spec, session, unit_id, token)
    _end_lease(spec, session, unit_id, token, at, LeaseOutcome.COMPLETED)
    try:
        state = spec.kinds[done.kind].on_complete(session, done, report, at)
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return Outcome(unit_id=unit_id, job_id=done.job_id, kind=done.kind, job_state=state)


def _repeated(spec: QueueSpec, session: Session, unit_id: int, token: str) -> Outcome:
    units, jobs = spec.tables.units, spec.tables.jobs
    row = session.execute(
        select(units.c.state, units.c.lease_token, units.c.job_id, units.c.kind, jobs.c.state)
        .join(jobs, jobs.c.id == units.c.job_id)
        .where(units.c.id == unit_id)
    ).first()
    if row is not None and row[0] == UnitState.DONE and row[1] == token:
        session.rollback()
        return Outcome(unit_id, row[2], row[3], row[4], repeated=True)
    raise_why(spec, session, unit_id)


def fail(
    spec: QueueSpec,
    session: Session,
    unit_id: int,
    token: str,
    *,
    fault: Fault,
    permanent: bool,
    policy: RetryPolicy,
    retry_after_seconds: float | None = None,
    counts_as_attempt: bool = True,
    now: datetime | None = None,
) -> Outcome:
    """Record a failed attempt at a unit; commit. Permanent: its job fails with ``fault``.
    Transient: the unit is pending again after ``policy``'s back-off (or
    ``retry_after_seconds``), until the policy is exhausted (then its job fails with the
    part's ``retries_exhausted``). ``counts_as_attempt=False``: a fault of the other side
    as a whole (paused, refusing our key), which does not use up the unit's attempts."""
    units, jobs = spec.tables.units, spec.tables.jobs
    at = current_time(session, now)
    code = fault.code[:64]
    bump = 1 if counts_as_attempt else 0
    row = session.execute(
        update(units)
        .where(held_by(spec, unit_id, token))
        .values(
            attempts=units.c.attempts + bump,
            last_error_code=code,
            last_error_message=fault.message,
        )
        .returning(units.c.job_id, units.c.kind, units.c.attempts, *spec.unit_cols())
    ).first()
    if row is None:
        raise_why(spec, session, unit_id)
    if not permanent and policy.exhausted(row.attempts):
        permanent = True
        fault = Fault.rendered(
            spec.errors.retries_exhausted,
            attempts=row.attempts,
            step=spec.describe(row),
            last_code=fault.code,
            last_message=fault.message,
        )
    if permanent:
        _end_lease(spec, session, unit_id, token, at, LeaseOutcome.FAILED)
        failed = spec.moves.failed
        end_job(
            spec,
            session,
            row.job_id,
            failed,
            now=at,
            fault=Fault(fault.code[:64], fault.message, fault.fix),
            failing_unit_id=unit_id,
        )
        session.commit()
        return Outcome(unit_id, row.job_id, row.kind, str(failed))
    retry_at = policy.next_time(at, max(1, row.attempts), retry_after_seconds)
    session.execute(
        update(units)
        .where(units.c.id == unit_id)
        .values(state=UnitState.PENDING, available_at=retry_at, lease_expires_at=None)
    )
    _end_lease(spec, session, unit_id, token, at, LeaseOutcome.RETRY)
    state = session.execute(
        update(jobs)
        .where(jobs.c.id == row.job_id)
        .values(
            attempts=jobs.c.attempts + bump,
            last_error_code=code,
            last_error_message=fault.message,
            last_error_fix=fault.fix,
            next_retry_at=retry_at,
        )
        .returning(jobs.c.state)
    ).scalar_one()
    session.commit()
    return Outcome(unit_id, row.job_id, row.kind, str(state))


def fail_job(
    spec: QueueSpec, session: Session, unit_id: int, token: str, fault: Fault, now: datetime
) -> None:
    """Fail the job of the unit held with ``token`` because of ``fault`` (no attempt is
    counted: the fault is the job's, not the try's); commit."""
    units = spec.tables.units
    held = session.execute(
        update(units)
        .where(held_by(spec, unit_id, token))
        .values(last_error_code=fault.code, last_error_message=fault.message)
        .returning(units.c.job_id)
    ).scalar_one_or_none()
    if held is None:
        raise_why(spec, session, unit_id)
    _end_lease(spec, session, unit_id, token, now, LeaseOutcome.FAILED)
    end_job(spec, session, held, spec.moves.failed, now=now, fault=fault, failing_unit_id=unit_id)
    session.commit()


def end_job(
    spec: QueueSpec,
    session: Session,
    job_id: int,
    state: str,
    *,
    now: datetime,
    fault: Fault | None = None,
    failing_unit_id: int | None = None,
    values: Mapping[str, Any] | None = None,
    close_open: bool = True,
) -> Row[Any] | None:
    """Move a job to the end ``state`` without committing: its open units are cancelled
    (the failing one marked failed), its open leases closed (``close_open=False``: the
    caller, completing the job's last unit, knows there are none), ``values`` set on it,
    and the part's ``on_job_end`` called. Only from a state the part's moves allow:
    answers None when the job had ended already; raises :class:`IllegalMoveError` for a
    state that is not an end, or a job in an active state that may not move there."""
    units, jobs, log = spec.tables.units, spec.tables.jobs, spec.tables.lease_log
    sources = spec.moves.sources(state)
    if state not in spec.moves.ended or not sources:
        raise IllegalMoveError(f"{state} is not a state a job may end in")
    if failing_unit_id is not None:
        session.execute(
            update(units)
            .where(units.c.id == failing_unit_id, units.c.state.in_(UNIT_OPEN))
            .values(
                state=UnitState.FAILED,
                last_error_code=fault.code if fault else None,
                last_error_message=fault.message if fault else None,
            )
        )
    if close_open:
        session.execute(
            update(units)
            .where(units.c.job_id == job_id, units.c.state.in_(UNIT_OPEN))
            .values(state=UnitState.CANCELLED)
        )
        session.execute(
            update(log)
            .where(log.c.job_id == job_id, log.c.ended_at.is_(None))
            .values(ended_at=now, outcome=state)
        )
    errors = (
        {
            "last_error_code": fault.code,
            "last_error_message": fault.message,
            "last_error_fix": fault.fix,
        }
        if fault is not None
        else {}
    )
    ended = session.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.state.in_(sources))
        .values(state=state, finished_at=now, next_retry_at=None, **errors, **(values or {}))
        .returning(jobs.c.id, *spec.job_cols())
    ).first()
    if ended is None:
        current = session.scalar(select(jobs.c.state).where(jobs.c.id == job_id))
        if current is not None and current in spec.moves.active:
            raise IllegalMoveError(f"job {job_id} may not move from {current} to {state}")
        return None
    if spec.on_job_end is not None:
        spec.on_job_end(session, ended, state, fault, now)
    return ended
