"""The sync queue over :mod:`mailshot.queue`: :data:`SYNC_QUEUE` (its tables, job states
and errors) and what a sync job does when a unit of each kind is claimed or completed, or
when the job ends.

- ``prepare`` claimed: the job is ``preparing`` and its mailshot ``synchronising``;
  completed (with the ESP campaign's id): the job is ``running``, or ``finalizing`` at
  once if every chunk was written while the snapshot was taken.
- ``chunk`` completed: ``chunks_done`` and ``recipients_written`` grow, with SQL
  increments under the job row's lock; the last chunk of a running job moves it to
  ``finalizing``, which makes its waiting ``finalize`` unit leasable.
- ``finalize`` completed: the job is ``completed`` with its counts, the mailshot
  ``synchronised``.
- a job that ends ``failed`` or ``cancelled`` sets its mailshot's summary (if it is still
  the mailshot's latest job).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, case, func, select, update
from sqlalchemy.orm import Session

from mailshot.core.errors import AppError, validation_error
from mailshot.core.errors import FieldProblem as Problem
from mailshot.crm.sync import errors
from mailshot.crm.sync.final_counts import final_counts
from mailshot.crm.sync.states import (
    JOB_MOVES,
    MAILSHOT_STATE_FOR_JOB,
    JobState,
    SyncState,
    UnitKind,
)
from mailshot.crm.sync.tables import QUEUE_TABLES, jobs, mailshots, units
from mailshot.queue import Fault, KindHooks, Lease, QueueErrors, QueueSpec, end_job


@dataclass(frozen=True)
class Report:
    """What a worker reports with a completed unit."""

    recipients_written: int | None = None
    esp_campaign_id: str | None = None
    result: dict[str, Any] | None = None


#: The express lane's units: the chunks and finalize of syncs of one chunk (an audience of
#: at most ``chunk_size``), so a one-chunk sync never waits behind a large one's chunks.
ONE_CHUNK_SYNCS = and_(
    units.c.kind.in_((UnitKind.CHUNK, UnitKind.FINALIZE)),
    jobs.c.recipients_total <= jobs.c.chunk_size,
)


def step(row: Row[Any]) -> str:
    """The unit's step, as errors name it."""
    if row.kind == UnitKind.CHUNK:
        return f"chunk {row.chunk_no} (recipients {row.first_seq} to {row.last_seq})"
    return str(row.kind)


# ---- prepare ----------------------------------------------------------------------------
def _prepare_claimed(session: Session, lease: Lease) -> None:
    session.execute(
        update(mailshots)
        .where(mailshots.c.id == lease.job.mailshot_id, mailshots.c.sync_job_id == lease.job_id)
        .values(sync_state=SyncState.SYNCHRONISING)
    )


def _prepare_completed(session: Session, done: Row[Any], report: Report, now: datetime) -> str:
    if not report.esp_campaign_id:
        raise validation_error(
            [Problem("esp_campaign_id", "required", "a prepare unit completes with the ESP's id")]
        )
    job = session.execute(
        update(jobs)
        .where(
            jobs.c.id == done.job_id,
            jobs.c.state == JobState.PREPARING,
            jobs.c.chunks_total.is_not(None),
        )
        .values(
            # Chunks cut while the snapshot was taken may all be done already.
            state=case(
                (
                    jobs.c.chunks_done >= jobs.c.chunks_total,
                    JOB_MOVES.move(JobState.PREPARING, JobState.FINALIZING),
                ),
                else_=JOB_MOVES.move(JobState.PREPARING, JobState.RUNNING),
            ),
            esp_campaign_id=report.esp_campaign_id,
            running_at=func.coalesce(jobs.c.running_at, now),
        )
        .returning(jobs.c.mailshot_id, jobs.c.state)
    ).first()
    if job is None:
        raise AppError(errors.SYNC_NO_SNAPSHOT, job_id=done.job_id)
    session.execute(
        update(mailshots)
        .where(mailshots.c.id == job.mailshot_id, mailshots.c.sync_job_id == done.job_id)
        .values(sync_state=SyncState.SYNCHRONISING, esp_campaign_id=report.esp_campaign_id)
    )
    return str(job.state)


# ---- chunk ------------------------------------------------------------------------------
def _chunk_completed(session: Session, done: Row[Any], report: Report, _now: datetime) -> str:
    written = report.recipients_written
    if written is None:
        written = done.last_seq - done.first_seq + 1
    # The job row's lock serialises concurrent completions, so exactly one of them sees
    # the last chunk done and moves the job on (which makes its finalize unit leasable).
    state = session.execute(
        update(jobs)
        .where(jobs.c.id == done.job_id)
        .values(
            chunks_done=jobs.c.chunks_done + 1,
            recipients_written=jobs.c.recipients_written + written,
            # Only a running job moves on: while it is still preparing (its chunks cut as
            # the snapshot is written), completing the prepare unit does.
            state=case(
                (
                    and_(
                        jobs.c.state == JobState.RUNNING,
                        jobs.c.chunks_done + 1 >= jobs.c.chunks_total,
                    ),
                    JOB_MOVES.move(JobState.RUNNING, JobState.FINALIZING),
                ),
                else_=jobs.c.state,
            ),
        )
        .returning(jobs.c.state)
    ).scalar_one()
    return str(state)


# ---- finalize ---------------------------------------------------------------------------
def _finalize_completed(session: Session, done: Row[Any], report: Report, now: datetime) -> str:
    total = session.scalar(select(jobs.c.recipients_total).where(jobs.c.id == done.job_id))
    counts = final_counts(session, done.job_id, total, report.result)
    job = end_job(
        SYNC_QUEUE,
        session,
        done.job_id,
        JobState.COMPLETED,
        now=now,
        values={
            "result": counts.result,
            "excluded_total": counts.excluded_total,
            "last_error_code": None,
            "last_error_message": None,
            "last_error_fix": None,
        },
        close_open=False,  # every chunk is done, and this was the last unit
    )
    if job is None:  # not finalizing: it ended meanwhile
        state = session.scalar(select(jobs.c.state).where(jobs.c.id == done.job_id))
        raise AppError(errors.SYNC_JOB_ENDED, job_id=done.job_id, state=state)
    session.execute(
        update(mailshots)
        .where(mailshots.c.id == job.mailshot_id, mailshots.c.sync_job_id == done.job_id)
        .values(
            sync_state=SyncState.SYNCHRONISED,
            synced_at=now,
            recipients_synced=counts.included,
            recipients_excluded=counts.excluded_total,
            sync_error_code=None,
            sync_error_message=None,
        )
    )
    return JobState.COMPLETED


# ---- the end of a job -------------------------------------------------------------------
def _job_ended(
    session: Session, job: Row[Any], state: str, fault: Fault | None, _now: datetime
) -> None:
    """The mailshot's summary, if this job is still its latest: failed or cancelled (a
    superseded job's mailshot is the new job's; a completed one's is written with its
    counts by the finalize)."""
    if state not in (JobState.FAILED, JobState.CANCELLED):
        return
    session.execute(
        update(mailshots)
        .where(mailshots.c.id == job.mailshot_id, mailshots.c.sync_job_id == job.id)
        .values(
            sync_state=MAILSHOT_STATE_FOR_JOB[JobState(state)],
            sync_error_code=fault.code if fault else None,
            sync_error_message=fault.message if fault else None,
        )
    )


SYNC_QUEUE = QueueSpec(
    tables=QUEUE_TABLES,
    moves=JOB_MOVES,
    errors=QueueErrors(
        lease_lost=errors.SYNC_LEASE_LOST,
        job_ended=errors.SYNC_JOB_ENDED,
        wrong_kind=errors.SYNC_WRONG_UNIT_KIND,
        unit_kills_workers=errors.SYNC_UNIT_KILLS_WORKERS,
        retries_exhausted=errors.SYNC_RETRIES_EXHAUSTED,
        unit_noun="sync unit",
    ),
    kinds={
        UnitKind.PREPARE: KindHooks(
            on_complete=_prepare_completed,
            job_values_on_claim={
                "state": case(
                    (
                        jobs.c.state == JobState.QUEUED,
                        JOB_MOVES.move(JobState.QUEUED, JobState.PREPARING),
                    ),
                    else_=jobs.c.state,
                )
            },
            on_claim=_prepare_claimed,
        ),
        UnitKind.CHUNK: KindHooks(on_complete=_chunk_completed),
        UnitKind.FINALIZE: KindHooks(on_complete=_finalize_completed),
    },
    waits_for={UnitKind.FINALIZE: JobState.FINALIZING},
    unit_columns=("chunk_no", "first_seq", "last_seq"),
    job_columns=("mailshot_id", "esp_campaign_id", "recipients_total", "chunks_total"),
    describe=step,
    on_job_end=_job_ended,
)
