"""The prepare step of a sync: snapshot the audience of the unit's job once, cutting it
into chunk units as it is written, under the prepare unit's lease.

The worker has created the ESP campaign first (from :func:`campaign_fields`), so the full
chunks of each committed slice of the snapshot become pending chunk units at once and
other workers write them while the snapshot goes on. The snapshot is written in short
transactions (a read, then one per slice of members; see
:func:`mailshot.crm.services.snapshot.snapshot`), so other writers get SQLite's write lock
between them; before each slice the lease and the job are checked again (under their row
locks on PostgreSQL), so a worker whose lease was taken over, or whose job ended, stops
there. The job stays ``preparing`` and gets its totals with the last slice. A takeover
before that resumes after the committed slices when chunks were cut from them, else redoes
the snapshot; after it, the taker gets the same snapshot back. The snapshots of the
mailshot's previous, ended jobs are dropped first.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mailshot import queue as lease_queue
from mailshot.contracts.campaign import CAMPAIGN_FIELDS, CampaignFieldsAnswer, PrepareAnswer
from mailshot.core.db.engine import begin_read, bulk_writes
from mailshot.core.errors import NOT_FOUND, AppError
from mailshot.crm.models import Mailshot
from mailshot.crm.services import snapshot as audience_snapshot
from mailshot.crm.services.audience import AudienceCounts
from mailshot.crm.services.snapshot import Checkpoint
from mailshot.crm.sync import errors
from mailshot.crm.sync.kinds import SYNC_QUEUE
from mailshot.crm.sync.running import RunningSnapshots
from mailshot.crm.sync.snapshots import ChunkCutter, drop_older_snapshots, unit_row, written
from mailshot.crm.sync.states import UnitKind
from mailshot.crm.sync.tables import current_time, jobs, units
from mailshot.crm.sync.work import fail_held_unit, raise_why
from mailshot.queue import UnitState


class _StoppedError(Exception):
    """The prepare unit's lease or its job ended between two slices of the snapshot."""

    def __init__(self, err: AppError) -> None:
        super().__init__(err.message)
        self.err = err


def _campaign_fields(mailshot: Mailshot, job_id: int) -> dict[str, Any]:
    """The campaign fields the worker sends to the ESP for the job's snapshot."""
    return {
        "crm_mailshot_id": mailshot.id,
        "crm_mailshot_uid": str(mailshot.uid),
        "snapshot": job_id,
        "mailshot_type": mailshot.mailshot_type,
        **{name: getattr(mailshot, name) for name in CAMPAIGN_FIELDS},
    }


def _snapshot_audience(
    session: Session, job_id: int, mailshot: Mailshot, checkpoint: Checkpoint, resume: bool
) -> AudienceCounts:
    """The audience's snapshot, in the default slices (tests make them smaller here)."""
    return audience_snapshot.snapshot(
        session, job_id, mailshot, checkpoint=checkpoint, resume=resume
    )


def _checkpoint(session: Session, unit_id: int, token: str, cutter: ChunkCutter) -> Checkpoint:
    """Commit what was written so far; then, for a writing step, check that the unit is
    still held with ``token`` and its job still active (raises :class:`_StoppedError`),
    and make the full chunks committed so far units at once (in a short transaction of
    their own), so workers start writing them to the ESP while the rest of the snapshot
    is taken."""

    def checkpoint(write: bool) -> None:
        session.commit()
        if not write:
            begin_read(session)  # the reads do not take SQLite's write lock
            return
        held()
        if cutter.cut(session, written(session, cutter.job_id), final=False):
            session.execute(
                update(jobs)
                .where(jobs.c.id == cutter.job_id)
                .values(running_at=func.coalesce(jobs.c.running_at, current_time(session)))
            )
        session.commit()
        held()

    def held() -> None:
        try:
            lease_queue.hold(SYNC_QUEUE, session, unit_id, token)
        except AppError as err:
            raise _StoppedError(err) from err

    return checkpoint


def _held_prepare(session: Session, unit_id: int, token: str) -> tuple[Any, Mailshot]:
    """The job of the prepare unit ``unit_id`` held with ``token``, and its mailshot (row
    locks on PostgreSQL); raises why not (lease lost, wrong kind, job ended, deleted)."""
    job = lease_queue.hold(
        SYNC_QUEUE,
        session,
        unit_id,
        token,
        kind=UnitKind.PREPARE,
        columns=(
            jobs.c.mailshot_id,
            jobs.c.chunk_size,
            jobs.c.recipients_total,
            jobs.c.excluded_total,
            jobs.c.chunks_total,
        ),
    )
    mailshot = session.get(Mailshot, job.mailshot_id)
    if mailshot is None:  # deleted: its jobs go with it, so this is a race at worst
        session.rollback()
        raise AppError(NOT_FOUND, what="mailshot", id=job.mailshot_id)
    return job, mailshot


def campaign_fields(session: Session, unit_id: int, token: str) -> CampaignFieldsAnswer:
    """The campaign fields of the prepare unit's job, before its snapshot is taken (so
    the worker can create the ESP campaign first and chunks can flow while the snapshot
    is written). Read-only."""
    job, mailshot = _held_prepare(session, unit_id, token)
    fields = CampaignFieldsAnswer(**_campaign_fields(mailshot, job.job_id))
    session.rollback()
    return fields


def prepare(
    session: Session,
    unit_id: int,
    token: str,
    *,
    now: datetime | None = None,
    running: RunningSnapshots | None = None,
) -> PrepareAnswer:
    """Snapshot the audience of the unit's job (once), cutting its chunk units, pending,
    as the snapshot is written, and its finalize unit; commit; answer the campaign fields
    and the snapshot's size. The caller has created the ESP campaign for this snapshot
    already (:func:`campaign_fields`). Given ``running``, the snapshot registers there,
    so a job that ends meanwhile stops it at once (:mod:`mailshot.crm.sync.running`)."""
    at = current_time(session, now)
    job, mailshot = _held_prepare(session, unit_id, token)
    if job.recipients_total is None:
        tracked = running.track(job.job_id, session) if running is not None else nullcontext()
        # Bulk work: a Synchronise, a lease or a chunk's completion waiting for the write
        # lock goes before the snapshot's next slice. A small source's snapshot is not:
        # it goes before large ones' slices too.
        small = audience_snapshot.is_small_write(session, mailshot)
        with tracked as stop, nullcontext() if small else bulk_writes():
            try:
                totals = _take_snapshot(session, job, mailshot, unit_id, token, at)
            except DBAPIError:
                if stop is None or not stop.is_set():
                    raise
                # Stopped mid-statement because the job ended: say so, change nothing.
                raise_why(session, unit_id)
    else:
        totals = (job.recipients_total, job.excluded_total or 0, job.chunks_total or 0)
    fields = PrepareAnswer(
        **_campaign_fields(mailshot, job.job_id),
        recipients_total=totals[0],
        excluded_total=totals[1],
        chunks_total=totals[2],
    )
    session.commit()
    return fields


def _take_snapshot(
    session: Session, job: Any, mailshot: Mailshot, unit_id: int, token: str, now: datetime
) -> tuple[int, int, int]:
    cutter = ChunkCutter(session, job.job_id, job.chunk_size)
    checkpoint = _checkpoint(session, unit_id, token, cutter)
    try:
        drop_older_snapshots(session, mailshot.id, job.job_id, checkpoint)
        # Chunks already cut (by a worker that then died) may be written already: keep
        # what was committed and go on after it, rather than start again.
        resume = cutter.next_no > 0
        counts = _snapshot_audience(session, job.job_id, mailshot, checkpoint, resume)
    except _StoppedError as stopped:
        # Taken over or ended meanwhile: what was committed is the taker's to redo.
        session.rollback()
        raise stopped.err from None
    except AppError as err:
        # The audience cannot be read (no source, source deleted): the job fails with
        # that reason, and the worker is told the same.
        session.rollback()
        fail_held_unit(session, unit_id, token, err, now)
        raise
    # The chunks are cut from what was written (seq 0..N-1), read back through the
    # primary key, rather than trusting a driver's rowcount.
    included = written(session, job.job_id)
    excluded = int(sum(counts.excluded.values()))
    cutter.cut(session, included, final=True)
    chunks_total = cutter.next_no
    session.execute(
        update(jobs)
        .where(jobs.c.id == job.job_id)
        .values(recipients_total=included, excluded_total=excluded, chunks_total=chunks_total)
    )
    if included == 0:
        reasons = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in counts.excluded.items() if n)
        empty = AppError(
            errors.SYNC_AUDIENCE_EMPTY,
            name=mailshot.name,
            excluded=excluded,
            reasons=reasons or "its source has no members",
            job_id=job.job_id,
        )
        # Keep the exclusions (they say why nobody is left) and fail the job.
        fail_held_unit(session, unit_id, token, empty, now)
        raise empty
    session.execute(insert(units), [unit_row(job.job_id, UnitKind.FINALIZE, UnitState.WAITING)])
    return included, excluded, chunks_total
