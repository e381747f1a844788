"""The user's side of the sync queue: Synchronise (and Retry), Cancel, and ending a job.

Synchronise is O(1) whatever the audience: in one transaction it supersedes the mailshot's
active job (if any), inserts a ``queued`` job with its ``prepare`` unit, and sets the
mailshot's ``sync_state``. The audience is read later, by the prepare step of a worker.
A job ends through :func:`mailshot.queue.end_job` (superseded, cancelled here).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailshot.core.db.sqlhelpers import get_or_404
from mailshot.core.errors import AppError
from mailshot.crm.models import Mailshot
from mailshot.crm.sync import errors, progress
from mailshot.crm.sync import preflight as preflight_checks
from mailshot.crm.sync.kinds import SYNC_QUEUE
from mailshot.crm.sync.schemas import SyncStatus
from mailshot.crm.sync.states import JOB_ACTIVE, RETRYABLE, JobState, SyncState, UnitKind
from mailshot.crm.sync.tables import current_time, jobs, mailshots, units
from mailshot.queue import UnitState, end_job

#: How often Synchronise retries when a concurrent Synchronise of the same mailshot won.
_REQUEST_TRIES = 3


def check_can_sync(session: Session, mailshot: Mailshot, *, preflight: bool = True) -> None:
    """Raise the catalogued refusal if ``mailshot`` cannot be synchronised: no sync target,
    or (with ``preflight``) any problem :mod:`mailshot.crm.sync.preflight` finds against the
    ESP's limits and the audience. Nothing is queued when this raises."""
    if not mailshot.sync_with:
        raise AppError(errors.SYNC_TARGET_MISSING, name=mailshot.name)
    if not preflight:
        return
    problems = preflight_checks.run(session, mailshot).problems
    if problems:
        raise AppError(
            errors.SYNC_PREFLIGHT_FAILED,
            details=problems,
            name=mailshot.name,
            summary=" ".join(p.message for p in problems),
        )


def request_sync(
    session: Session,
    mailshot_id: int,
    *,
    chunk_size: int,
    actor: str | None = None,
    now: datetime | None = None,
    only_if_state: frozenset[str] | None = None,
    preflight: bool = True,
    before_commit: Callable[[Session], None] | None = None,
) -> int:
    """Queue a sync of the mailshot (superseding its active one); commit; return the job id.

    With ``only_if_state`` (Retry), refuse unless the mailshot's sync state is one of them.
    ``preflight=False`` skips the preflight (tests that put a mailshot the ESP will refuse
    in the queue on purpose); the sync target is checked all the same. ``before_commit``
    is called in the transaction, once the job is queued.
    """
    for attempt in range(_REQUEST_TRIES):
        mailshot = get_or_404(session, Mailshot, mailshot_id, "mailshot")
        if only_if_state is not None and mailshot.sync_state not in only_if_state:
            raise AppError(errors.SYNC_NOT_RETRYABLE, name=mailshot.name, state=mailshot.sync_state)
        check_can_sync(session, mailshot, preflight=preflight)
        at = current_time(session, now)
        try:
            job_id = _insert_job(session, mailshot_id, chunk_size=chunk_size, actor=actor, now=at)
            if before_commit is not None:
                session.expire_all()  # the mailshot was updated with SQL, not through the ORM
                before_commit(session)
            session.commit()
            return int(job_id)
        except IntegrityError:
            # A concurrent Synchronise of the same mailshot committed first (the partial
            # unique index allows one active job per mailshot): supersede that one instead.
            session.rollback()
            if attempt == _REQUEST_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def synchronise(
    session: Session,
    mailshot_id: int,
    *,
    chunk_size: int,
    actor: str | None = None,
    retry: bool = False,
) -> SyncStatus:
    """Synchronise (or, with ``retry``, Retry) as the API answers it: queue the sync and
    read the mailshot's status, with the warnings of the checks that could not be made, in
    the same transaction. Read after the commit, the status would compete with the
    workers that commit wakes (each looks for the new unit at once) and the answer would
    wait for them."""
    answers: list[SyncStatus] = []

    def answer(s: Session) -> None:
        status = progress.mailshot_status(s, mailshot_id)
        status.warnings = preflight_checks.limit_warnings(s)
        answers.append(status)

    request_sync(
        session,
        mailshot_id,
        chunk_size=chunk_size,
        actor=actor,
        only_if_state=RETRYABLE if retry else None,
        before_commit=answer,
    )
    return answers[-1]


def _insert_job(
    session: Session, mailshot_id: int, *, chunk_size: int, actor: str | None, now: datetime
) -> int:
    active = session.execute(
        select(jobs.c.id).where(jobs.c.mailshot_id == mailshot_id, jobs.c.state.in_(JOB_ACTIVE))
    ).scalar_one_or_none()
    if active is not None:
        end_job(SYNC_QUEUE, session, active, JobState.SUPERSEDED, now=now)
    job_id = session.execute(
        insert(jobs)
        .values(
            mailshot_id=mailshot_id,
            state=JobState.QUEUED,
            requested_at=now,
            requested_by=actor,
            chunk_size=chunk_size,
            chunks_done=0,
            recipients_written=0,
            units_leased=0,
            attempts=0,
            takeovers=0,
        )
        .returning(jobs.c.id)
    ).scalar_one()
    session.execute(
        insert(units).values(
            job_id=job_id,
            kind=UnitKind.PREPARE,
            state=UnitState.PENDING,
            attempts=0,
            takeovers=0,
            recipients_written=0,
        )
    )
    if active is not None:
        session.execute(update(jobs).where(jobs.c.id == active).values(superseded_by=job_id))
    session.execute(
        update(mailshots)
        .where(mailshots.c.id == mailshot_id)
        .values(
            sync_state=SyncState.QUEUED,
            sync_job_id=job_id,
            sync_error_code=None,
            sync_error_message=None,
        )
    )
    return int(job_id)


def cancel(session: Session, mailshot_id: int, *, now: datetime | None = None) -> int:
    """Cancel the mailshot's active sync; commit; return the job id."""
    mailshot = get_or_404(session, Mailshot, mailshot_id, "mailshot")
    job_id = session.execute(
        select(jobs.c.id).where(jobs.c.mailshot_id == mailshot_id, jobs.c.state.in_(JOB_ACTIVE))
    ).scalar_one_or_none()
    if (
        job_id is None
        or end_job(SYNC_QUEUE, session, job_id, JobState.CANCELLED, now=current_time(session, now))
        is None
    ):
        raise AppError(errors.SYNC_NOT_ACTIVE, name=mailshot.name, state=mailshot.sync_state)
    session.commit()
    return int(job_id)


def retry(
    session: Session,
    mailshot_id: int,
    *,
    chunk_size: int,
    actor: str | None = None,
    now: datetime | None = None,
    preflight: bool = True,
) -> int:
    """Queue a new sync of a mailshot whose last sync failed or was cancelled."""
    return request_sync(
        session,
        mailshot_id,
        chunk_size=chunk_size,
        actor=actor,
        now=now,
        only_if_state=RETRYABLE,
        preflight=preflight,
    )
