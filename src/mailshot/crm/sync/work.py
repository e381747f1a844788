"""The bridge's side of the sync queue: lease a unit, keep it, prepare, read recipients,
complete or fail. Each call is one short transaction that commits (or raises).

A unit is held by whoever has its current ``lease_token``; every call that changes a unit
matches on that token and on ``state = 'leased'`` in the same UPDATE, so a worker whose
lease expired and was taken over can change nothing (409 ``SYNC_LEASE_LOST``), and a
worker whose job ended learns it at its next call (409 ``SYNC_JOB_ENDED``).

The claim: candidates are ``pending`` units that are due, ``leased`` units whose lease has
expired (a takeover), and the ``waiting`` finalize unit of a job whose chunks are all done
(state ``finalizing``); least-served job first (``units_leased``), then job id, then unit
id. On PostgreSQL the candidate row is locked with ``FOR UPDATE OF sync_units SKIP
LOCKED``, so concurrent claims pick different units without waiting; on SQLite the write
transaction (``BEGIN IMMEDIATE``) makes the claim exclusive.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import Row, and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from mailshot.crm.sync import errors
from mailshot.crm.sync.backoff import DEFAULT_POLICY, RetryPolicy
from mailshot.crm.sync.final_counts import final_counts
from mailshot.crm.sync.queue import end_job
from mailshot.crm.sync.states import JOB_ACTIVE
from mailshot.crm.sync.tables import (
    current_time,
    is_postgres,
    jobs,
    lease_log,
    mailshots,
    units,
)
from mailshot.errors import NOT_FOUND, AppError, ErrorSpec, validation_error
from mailshot.errors import FieldProblem as Problem

#: Candidates skipped in one lease call because their job failed on the spot.
_LEASE_SCAN = 20


@dataclass(frozen=True)
class LeasedUnit:
    unit_id: int
    job_id: int
    mailshot_id: int
    kind: str
    chunk_no: int | None
    first_seq: int | None
    last_seq: int | None
    lease_token: str
    lease_expires_at: datetime
    lease_seconds: float
    attempt: int
    takeover: bool
    esp_campaign_id: str | None
    recipients_total: int | None
    chunks_total: int | None


def _rendered(spec: ErrorSpec, **params: Any) -> tuple[str, str, str]:
    err = AppError(spec, **params)
    return err.code, err.message, err.fix


def _step(kind: str, chunk_no: int | None, first: int | None, last: int | None) -> str:
    if kind == "chunk":
        return f"chunk {chunk_no} (recipients {first} to {last})"
    return kind


def raise_why(session: Session, unit_id: int) -> NoReturn:
    """Explain why a call about ``unit_id`` changed nothing: gone, job ended, or lease lost."""
    session.rollback()
    row = session.execute(
        select(units.c.state, units.c.job_id, jobs.c.state.label("job_state"))
        .join(jobs, jobs.c.id == units.c.job_id)
        .where(units.c.id == unit_id)
    ).first()
    session.rollback()
    if row is None:
        raise AppError(NOT_FOUND, what="sync unit", id=unit_id)
    if row.job_state not in JOB_ACTIVE or row.state in ("cancelled", "failed"):
        raise AppError(errors.SYNC_JOB_ENDED, job_id=row.job_id, state=row.job_state)
    raise AppError(errors.SYNC_LEASE_LOST, unit_id=unit_id)


# ---- lease ------------------------------------------------------------------------------
def has_due_unit(session: Session, *, small_only: bool = False) -> bool:
    """Whether a unit is due for :func:`lease`, read without locking anything: an idle
    worker's lease looks here first, so it does not queue for SQLite's write lock (ahead of
    a user's Synchronise) only to find nothing."""
    return _candidate(session, current_time(session), small_only, lock=False) is not None


def _candidate(
    session: Session, now: datetime, small_only: bool = False, *, lock: bool = True
) -> Any:
    query = (
        select(
            units.c.id,
            units.c.job_id,
            units.c.kind,
            units.c.state,
            units.c.chunk_no,
            units.c.first_seq,
            units.c.last_seq,
            units.c.lease_token,
            units.c.lease_expires_at,
            units.c.takeovers,
        )
        .select_from(units.join(jobs, jobs.c.id == units.c.job_id))
        .where(
            units.c.state.in_(("pending", "leased", "waiting")),
            jobs.c.state.in_(JOB_ACTIVE),
            or_(
                and_(
                    units.c.state == "pending",
                    or_(units.c.available_at.is_(None), units.c.available_at <= now),
                ),
                and_(units.c.state == "leased", units.c.lease_expires_at < now),
                and_(
                    units.c.state == "waiting",
                    units.c.kind == "finalize",
                    jobs.c.state == "finalizing",
                ),
            ),
        )
        .order_by(jobs.c.units_leased, jobs.c.id, units.c.id)
        .limit(1)
    )
    if small_only:  # the express lane: chunks and finalize of one-chunk syncs
        query = query.where(
            units.c.kind.in_(("chunk", "finalize")),
            jobs.c.recipients_total <= jobs.c.chunk_size,
        )
    if lock and is_postgres(session):
        query = query.with_for_update(of=units, skip_locked=True)
    return session.execute(query).first()


def lease(
    session: Session,
    *,
    worker_id: str,
    lease_seconds: float,
    max_takeovers: int,
    small_only: bool = False,
    now: datetime | None = None,
) -> LeasedUnit | None:
    """Claim the next unit of work for ``worker_id``, or None when there is none; with
    ``small_only``, only a chunk or finalize unit of a sync of at most one chunk."""
    for _ in range(_LEASE_SCAN):
        at = current_time(session, now)
        cand = _candidate(session, at, small_only)
        if cand is None:
            session.rollback()
            return None
        if cand.state == "leased" and cand.takeovers + 1 > max_takeovers:
            _fail_for_takeovers(session, cand, at)
            session.commit()
            continue
        leased = _claim(session, cand, worker_id, lease_seconds, at)
        session.commit()
        return leased
    session.rollback()
    return None


def _fail_for_takeovers(session: Session, cand: Row[Any], now: datetime) -> None:
    session.execute(
        update(lease_log)
        .where(lease_log.c.unit_id == cand.id, lease_log.c.lease_token == cand.lease_token)
        .values(ended_at=cand.lease_expires_at, outcome="expired")
    )
    code, message, fix = _rendered(
        errors.SYNC_UNIT_KILLS_WORKERS,
        step=_step(cand.kind, cand.chunk_no, cand.first_seq, cand.last_seq),
        takeovers=cand.takeovers + 1,
    )
    end_job(
        session,
        cand.job_id,
        "failed",
        now=now,
        code=code,
        message=message,
        fix=fix,
        failing_unit_id=cand.id,
    )


def _claim(
    session: Session, cand: Row[Any], worker_id: str, lease_seconds: float, now: datetime
) -> LeasedUnit:
    token = uuid.uuid4().hex
    expires = now + timedelta(seconds=lease_seconds)
    takeover = cand.state == "leased"
    attempts = session.execute(
        update(units)
        .where(units.c.id == cand.id)
        .values(
            state="leased",
            lease_token=token,
            lease_owner=worker_id[:255],
            lease_expires_at=expires,
            takeovers=units.c.takeovers + (1 if takeover else 0),
        )
        .returning(units.c.attempts)
    ).scalar_one()
    if takeover:
        session.execute(
            update(lease_log)
            .where(lease_log.c.unit_id == cand.id, lease_log.c.lease_token == cand.lease_token)
            .values(ended_at=cand.lease_expires_at, outcome="expired")
        )
    values: dict[str, Any] = {
        "units_leased": jobs.c.units_leased + 1,
        "takeovers": jobs.c.takeovers + (1 if takeover else 0),
        "started_at": func.coalesce(jobs.c.started_at, now),
    }
    if cand.kind == "prepare":
        values["state"] = case((jobs.c.state == "queued", "preparing"), else_=jobs.c.state)
    job = session.execute(
        update(jobs)
        .where(jobs.c.id == cand.job_id)
        .values(**values)
        .returning(
            jobs.c.mailshot_id,
            jobs.c.esp_campaign_id,
            jobs.c.recipients_total,
            jobs.c.chunks_total,
        )
    ).one()
    if cand.kind == "prepare":
        session.execute(
            update(mailshots)
            .where(mailshots.c.id == job.mailshot_id, mailshots.c.sync_job_id == cand.job_id)
            .values(sync_state="synchronising")
        )
    session.execute(
        insert(lease_log).values(
            job_id=cand.job_id,
            unit_id=cand.id,
            lease_token=token,
            worker_id=worker_id[:255],
            leased_at=now,
        )
    )
    return LeasedUnit(
        unit_id=cand.id,
        job_id=cand.job_id,
        mailshot_id=job.mailshot_id,
        kind=cand.kind,
        chunk_no=cand.chunk_no,
        first_seq=cand.first_seq,
        last_seq=cand.last_seq,
        lease_token=token,
        lease_expires_at=expires,
        lease_seconds=lease_seconds,
        attempt=attempts + 1,
        takeover=takeover,
        esp_campaign_id=job.esp_campaign_id,
        recipients_total=job.recipients_total,
        chunks_total=job.chunks_total,
    )


# ---- keep a lease -----------------------------------------------------------------------
def heartbeat(
    session: Session,
    unit_id: int,
    token: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> datetime:
    """Extend the lease of ``unit_id`` held with ``token``; commit; return the new expiry."""
    expires = current_time(session, now) + timedelta(seconds=lease_seconds)
    held = session.execute(
        update(units)
        .where(units.c.id == unit_id, units.c.lease_token == token, units.c.state == "leased")
        .values(lease_expires_at=expires)
        .returning(units.c.id)
    ).first()
    if held is None:
        raise_why(session, unit_id)
    session.commit()
    return expires


# ---- finish a unit ----------------------------------------------------------------------
@dataclass(frozen=True)
class UnitOutcome:
    unit_id: int
    job_id: int
    kind: str
    job_state: str
    repeated: bool = False


def complete(
    session: Session,
    unit_id: int,
    token: str,
    *,
    recipients_written: int | None = None,
    esp_campaign_id: str | None = None,
    result: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> UnitOutcome:
    """Record that the unit's work is done; commit. Repeating it with the same token
    changes nothing; with a lost lease it raises and changes nothing."""
    at = current_time(session, now)
    done = session.execute(
        update(units)
        .where(units.c.id == unit_id, units.c.lease_token == token, units.c.state == "leased")
        .values(
            state="done",
            done_at=at,
            lease_expires_at=None,
            recipients_written=recipients_written or 0,
        )
        .returning(units.c.job_id, units.c.kind, units.c.first_seq, units.c.last_seq)
    ).first()
    if done is None:
        return _repeated_completion(session, unit_id, token)
    if done.kind == "prepare" and not esp_campaign_id:
        session.rollback()
        raise validation_error(
            [Problem("esp_campaign_id", "required", "a prepare unit completes with the ESP's id")]
        )
    session.execute(
        update(lease_log)
        .where(lease_log.c.unit_id == unit_id, lease_log.c.lease_token == token)
        .values(ended_at=at, outcome="completed")
    )
    if done.kind == "prepare":
        state = _complete_prepare(session, done.job_id, str(esp_campaign_id), at)
    elif done.kind == "chunk":
        written = (
            recipients_written
            if recipients_written is not None
            else done.last_seq - done.first_seq + 1
        )
        state = _complete_chunk(session, done.job_id, written)
    else:
        state = _complete_finalize(session, done.job_id, result, at)
    session.commit()
    return UnitOutcome(unit_id=unit_id, job_id=done.job_id, kind=done.kind, job_state=state)


def _repeated_completion(session: Session, unit_id: int, token: str) -> UnitOutcome:
    row = session.execute(
        select(units.c.state, units.c.lease_token, units.c.job_id, units.c.kind, jobs.c.state)
        .join(jobs, jobs.c.id == units.c.job_id)
        .where(units.c.id == unit_id)
    ).first()
    if row is not None and row[0] == "done" and row[1] == token:
        session.rollback()
        return UnitOutcome(unit_id, row[2], row[3], row[4], repeated=True)
    raise_why(session, unit_id)


def _complete_prepare(session: Session, job_id: int, esp_campaign_id: str, now: datetime) -> str:
    session.execute(
        update(units)
        .where(units.c.job_id == job_id, units.c.kind == "chunk", units.c.state == "waiting")
        .values(state="pending")
    )
    job = session.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.state == "preparing", jobs.c.chunks_total.is_not(None))
        .values(
            # Chunks cut while the snapshot was taken may all be done already.
            state=case((jobs.c.chunks_done >= jobs.c.chunks_total, "finalizing"), else_="running"),
            esp_campaign_id=esp_campaign_id,
            running_at=func.coalesce(jobs.c.running_at, now),
        )
        .returning(jobs.c.mailshot_id, jobs.c.state)
    ).first()
    if job is None:
        session.rollback()
        raise AppError(errors.SYNC_NO_SNAPSHOT, job_id=job_id)
    session.execute(
        update(mailshots)
        .where(mailshots.c.id == job.mailshot_id, mailshots.c.sync_job_id == job_id)
        .values(sync_state="synchronising", esp_campaign_id=esp_campaign_id)
    )
    return str(job.state)


def _complete_chunk(session: Session, job_id: int, written: int) -> str:
    # The job row's lock serialises concurrent completions, so exactly one of them sees
    # the last chunk done and moves the job on (which makes its finalize unit leasable).
    state = session.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            chunks_done=jobs.c.chunks_done + 1,
            recipients_written=jobs.c.recipients_written + written,
            # Only a running job moves on: while it is still preparing (its chunks cut as
            # the snapshot is written), completing the prepare unit does.
            state=case(
                (
                    and_(jobs.c.state == "running", jobs.c.chunks_done + 1 >= jobs.c.chunks_total),
                    "finalizing",
                ),
                else_=jobs.c.state,
            ),
        )
        .returning(jobs.c.state)
    ).scalar_one()
    return str(state)


def _complete_finalize(
    session: Session, job_id: int, result: dict[str, Any] | None, now: datetime
) -> str:
    total = session.scalar(select(jobs.c.recipients_total).where(jobs.c.id == job_id))
    counts = final_counts(session, job_id, total, result)
    job = session.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.state == "finalizing")
        .values(
            state="completed",
            finished_at=now,
            result=counts.result,
            excluded_total=counts.excluded_total,
            next_retry_at=None,
            last_error_code=None,
            last_error_message=None,
            last_error_fix=None,
        )
        .returning(jobs.c.mailshot_id, jobs.c.recipients_total, jobs.c.excluded_total)
    ).one()
    session.execute(
        update(mailshots)
        .where(mailshots.c.id == job.mailshot_id, mailshots.c.sync_job_id == job_id)
        .values(
            sync_state="synchronised",
            synced_at=now,
            recipients_synced=counts.included,
            recipients_excluded=counts.excluded_total,
            sync_error_code=None,
            sync_error_message=None,
        )
    )
    return "completed"


def fail(
    session: Session,
    unit_id: int,
    token: str,
    *,
    permanent: bool,
    code: str,
    message: str,
    fix: str | None = None,
    retry_after_seconds: float | None = None,
    counts_as_attempt: bool = True,
    max_attempts: int,
    policy: RetryPolicy = DEFAULT_POLICY,
    now: datetime | None = None,
) -> UnitOutcome:
    """Record a failed attempt at a unit; commit. Permanent: its job fails with the reason.
    Transient: the unit is retried after a backoff, until ``max_attempts``."""
    at = current_time(session, now)
    row = session.execute(
        update(units)
        .where(units.c.id == unit_id, units.c.lease_token == token, units.c.state == "leased")
        .values(
            attempts=units.c.attempts + (1 if counts_as_attempt else 0),
            last_error_code=code[:64],
            last_error_message=message,
        )
        .returning(
            units.c.job_id,
            units.c.kind,
            units.c.attempts,
            units.c.chunk_no,
            units.c.first_seq,
            units.c.last_seq,
        )
    ).first()
    if row is None:
        raise_why(session, unit_id)
    if not permanent and row.attempts >= max_attempts:
        permanent = True
        code, message, fix = _rendered(
            errors.SYNC_RETRIES_EXHAUSTED,
            attempts=row.attempts,
            step=_step(row.kind, row.chunk_no, row.first_seq, row.last_seq),
            last_code=code,
            last_message=message,
        )
    if permanent:
        session.execute(
            update(lease_log)
            .where(lease_log.c.unit_id == unit_id, lease_log.c.lease_token == token)
            .values(ended_at=at, outcome="failed")
        )
        end_job(
            session,
            row.job_id,
            "failed",
            now=at,
            code=code[:64],
            message=message,
            fix=fix,
            failing_unit_id=unit_id,
        )
        session.commit()
        return UnitOutcome(unit_id, row.job_id, row.kind, "failed")
    retry_at = policy.next_time(at, max(1, row.attempts), retry_after_seconds)
    session.execute(
        update(units)
        .where(units.c.id == unit_id)
        .values(state="pending", available_at=retry_at, lease_expires_at=None)
    )
    session.execute(
        update(lease_log)
        .where(lease_log.c.unit_id == unit_id, lease_log.c.lease_token == token)
        .values(ended_at=at, outcome="retry")
    )
    state = session.execute(
        update(jobs)
        .where(jobs.c.id == row.job_id)
        .values(
            attempts=jobs.c.attempts + (1 if counts_as_attempt else 0),
            last_error_code=code[:64],
            last_error_message=message,
            last_error_fix=fix,
            next_retry_at=retry_at,
        )
        .returning(jobs.c.state)
    ).scalar_one()
    session.commit()
    return UnitOutcome(unit_id, row.job_id, row.kind, str(state))


def fail_held_unit(
    session: Session, unit_id: int, token: str, err: AppError, now: datetime
) -> None:
    """Fail the job of a unit held with ``token`` because of ``err``; commit."""
    held = session.execute(
        update(units)
        .where(units.c.id == unit_id, units.c.lease_token == token, units.c.state == "leased")
        .values(last_error_code=err.code, last_error_message=err.message)
        .returning(units.c.job_id)
    ).scalar_one_or_none()
    if held is None:
        raise_why(session, unit_id)
    session.execute(
        update(lease_log)
        .where(lease_log.c.unit_id == unit_id, lease_log.c.lease_token == token)
        .values(ended_at=now, outcome="failed")
    )
    end_job(
        session,
        held,
        "failed",
        now=now,
        code=err.code,
        message=err.message,
        fix=err.fix,
        failing_unit_id=unit_id,
    )
    session.commit()
