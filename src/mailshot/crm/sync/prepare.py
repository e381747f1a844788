"""The audience hand-off of a sync: the prepare step (snapshot the audience once, cut it
into chunk units) and the read of one chunk's recipients (the hot path of a sync).

The snapshot is written in short transactions (a read, then one per slice of members;
see :func:`mailshot.crm.services.snapshot.snapshot`), so other writers (Synchronise, leases,
heartbeats, other jobs' chunks) get SQLite's write lock between them. Before each slice the
prepare unit's lease and the job are checked again (under their row locks on PostgreSQL):
a worker whose lease was taken over, or whose job was superseded, stops at the next slice.
Given ``chunks_pending`` (the worker has created the ESP campaign already), the full chunks
of each committed slice become pending chunk units at once, so other workers write them
while the snapshot goes on; otherwise the chunk units come, waiting, with the last slice.
The job stays ``preparing`` and gets its totals with the last slice. A takeover before
that resumes after the committed slices when chunks were cut from them (they may be
written already), else redoes the snapshot from scratch (deleting the job's partial rows
first); after it, the taker gets the same snapshot back. The snapshot of the
mailshot's previous, ended jobs is dropped at that moment (in batches, committed between
them), so the snapshot tables hold at most one ended snapshot per mailshot besides the
active one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import delete, func, insert, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mailshot.crm.models import Mailshot
from mailshot.crm.services import snapshot as audience_snapshot
from mailshot.crm.sync import errors
from mailshot.crm.sync.running import RunningSnapshots
from mailshot.crm.sync.states import JOB_ACTIVE, chunk_bounds
from mailshot.crm.sync.tables import (
    current_time,
    exclusions,
    is_postgres,
    jobs,
    recipients,
    units,
)
from mailshot.crm.sync.work import fail_held_unit, raise_why
from mailshot.db import begin_read, bulk_writes
from mailshot.errors import NOT_FOUND, AppError

RECIPIENT_COLUMNS = ("seq", "person_id", "email", "first_name", "last_name", "organisation_id")
#: The most recipients one read may ask for.
MAX_RECIPIENTS_PER_READ = 100_000


class Counts(Protocol):
    """What :func:`mailshot.crm.services.snapshot.snapshot` answers."""

    included: int
    excluded: dict[str, int]


SnapshotFn = Callable[[Session, int, Mailshot], Counts]
#: Commit, then begin a read-only (False) or a checked writing (True) transaction.
Checkpoint = Callable[[bool], None]
#: Rows of an older snapshot deleted per transaction.
DROP_BATCH = 50_000


class _StoppedError(Exception):
    """The prepare unit's lease or its job ended between two slices of the snapshot."""

    def __init__(self, err: AppError) -> None:
        super().__init__(err.message)
        self.err = err


@dataclass(frozen=True)
class CampaignFields:
    """The campaign fields the worker sends to the ESP."""

    crm_mailshot_id: int
    crm_mailshot_uid: str
    snapshot: int
    name: str
    subject: str | None
    from_name: str | None
    from_address: str | None
    reply_to: str | None
    html: str | None
    text: str | None
    mailshot_type: str

    @classmethod
    def of(cls, mailshot: Mailshot, job_id: int) -> CampaignFields:
        return cls(
            crm_mailshot_id=mailshot.id,
            crm_mailshot_uid=str(mailshot.uid),
            snapshot=job_id,
            name=mailshot.name,
            subject=mailshot.subject,
            from_name=mailshot.from_name,
            from_address=mailshot.from_address,
            reply_to=mailshot.reply_to,
            html=mailshot.html,
            text=mailshot.text,
            mailshot_type=mailshot.mailshot_type,
        )


@dataclass(frozen=True)
class PreparedCampaign(CampaignFields):
    """The campaign fields and the snapshot's size."""

    recipients_total: int = 0
    excluded_total: int = 0
    chunks_total: int = 0


class _ChunkCutter:
    """Cuts a job's snapshot into chunk units as it is written: every full chunk of the
    recipients committed so far, then (``final``) the rest. Resumes after the units that
    exist (a takeover of a prepare that had already cut some)."""

    def __init__(self, session: Session, job_id: int, chunk_size: int, state: str) -> None:
        self.job_id, self.chunk_size, self.state = job_id, chunk_size, state
        row = session.execute(
            select(func.count(), func.max(units.c.last_seq)).where(
                units.c.job_id == job_id, units.c.kind == "chunk"
            )
        ).one()
        self.next_no = int(row[0])
        self.next_first = 0 if row[1] is None else int(row[1]) + 1

    def cut(self, session: Session, written: int, *, final: bool) -> int:
        """Insert the units for recipients ``next_first..written-1`` (full chunks only unless
        ``final``); return how many were inserted."""
        rows: list[dict[str, Any]] = []
        for first, last in chunk_bounds(written, self.chunk_size):
            if first < self.next_first or (last - first + 1 < self.chunk_size and not final):
                continue
            rows.append(_unit_row(self.job_id, "chunk", self.state, self.next_no, first, last))
            self.next_no += 1
            self.next_first = last + 1
        if rows:
            session.execute(insert(units), rows)
        return len(rows)


def _unit_row(
    job_id: int,
    kind: str,
    state: str,
    no: int | None = None,
    first: int | None = None,
    last: int | None = None,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "kind": kind,
        "chunk_no": no,
        "first_seq": first,
        "last_seq": last,
        "state": state,
        "attempts": 0,
        "takeovers": 0,
        "recipients_written": 0,
    }


def _written(session: Session, job_id: int) -> int:
    """How many recipients the job's snapshot holds (seq is 0..N-1 without gaps, and
    max() is one probe of the primary key)."""
    return int(
        session.execute(
            select(func.coalesce(func.max(recipients.c.seq), -1) + 1).where(
                recipients.c.job_id == job_id
            )
        ).scalar_one()
    )


def _default_snapshot(
    session: Session, job_id: int, mailshot: Mailshot, checkpoint: Checkpoint, resume: bool
) -> Counts:
    return audience_snapshot.snapshot(
        session, job_id, mailshot, checkpoint=checkpoint, resume=resume
    )


def _checkpoint(
    session: Session, unit_id: int, token: str, cutter: _ChunkCutter | None = None
) -> Checkpoint:
    """Commit what was written so far; then, for a writing step, check that the unit is
    still leased with ``token`` and its job still active (raises :class:`_StoppedError`).
    With a ``cutter``, the full chunks committed so far become units at once (in a short
    transaction of their own), so workers start writing them to the ESP while the rest of
    the snapshot is taken."""

    def checkpoint(write: bool) -> None:
        session.commit()
        if not write:
            begin_read(session)  # the reads do not take SQLite's write lock
            return
        if cutter is not None:
            held()
            if cutter.cut(session, _written(session, cutter.job_id), final=False):
                session.execute(
                    update(jobs)
                    .where(jobs.c.id == cutter.job_id)
                    .values(running_at=func.coalesce(jobs.c.running_at, current_time(session)))
                )
            session.commit()
        held()

    def held() -> None:
        query = (
            select(units.c.state, units.c.lease_token, jobs.c.state.label("job_state"))
            .join(jobs, jobs.c.id == units.c.job_id)
            .where(units.c.id == unit_id)
        )
        if is_postgres(session):
            query = query.with_for_update()
        row = session.execute(query).first()
        if (
            row is None
            or row.state != "leased"
            or row.lease_token != token
            or row.job_state not in JOB_ACTIVE
        ):
            try:
                raise_why(session, unit_id)
            except AppError as err:
                raise _StoppedError(err) from err

    return checkpoint


def _held_prepare(session: Session, unit_id: int, token: str) -> tuple[Any, Mailshot]:
    """The job of the prepare unit ``unit_id`` held with ``token``, and its mailshot (row
    locks on PostgreSQL); raises why not (lease lost, wrong kind, job ended, deleted)."""
    unit_q = select(units.c.kind, units.c.state, units.c.lease_token, units.c.job_id).where(
        units.c.id == unit_id
    )
    if is_postgres(session):
        unit_q = unit_q.with_for_update()
    unit = session.execute(unit_q).first()
    if unit is None or unit.state != "leased" or unit.lease_token != token:
        raise_why(session, unit_id)
    if unit.kind != "prepare":
        session.rollback()
        raise AppError(
            errors.SYNC_WRONG_UNIT_KIND, unit_id=unit_id, kind=unit.kind, expected="prepare"
        )
    job_q = select(jobs).where(jobs.c.id == unit.job_id)
    if is_postgres(session):
        job_q = job_q.with_for_update()
    job = session.execute(job_q).one()
    if job.state not in JOB_ACTIVE:
        session.rollback()
        raise AppError(errors.SYNC_JOB_ENDED, job_id=job.id, state=job.state)
    mailshot = session.get(Mailshot, job.mailshot_id)
    if mailshot is None:  # deleted: its jobs go with it, so this is a race at worst
        session.rollback()
        raise AppError(NOT_FOUND, what="mailshot", id=job.mailshot_id)
    return job, mailshot


def campaign_fields(session: Session, unit_id: int, token: str) -> CampaignFields:
    """The campaign fields of the prepare unit's job, before its snapshot is taken (so
    the worker can create the ESP campaign first and chunks can flow while the snapshot
    is written). Read-only."""
    job, mailshot = _held_prepare(session, unit_id, token)
    fields = CampaignFields.of(mailshot, job.id)
    session.rollback()
    return fields


def prepare(
    session: Session,
    unit_id: int,
    token: str,
    *,
    chunks_pending: bool = False,
    now: datetime | None = None,
    snapshot: SnapshotFn | None = None,
    running: RunningSnapshots | None = None,
) -> PreparedCampaign:
    """Snapshot the audience of the unit's job (once), create its chunk units and its
    finalize unit, commit, and answer the campaign fields.

    With ``chunks_pending`` (the caller has already created the ESP campaign for this
    snapshot, see :func:`campaign_fields`) the chunk units are created ``pending`` while
    the snapshot is written, slice by slice, so workers write them to the ESP meanwhile;
    otherwise they are created ``waiting`` at the end and become pending when the
    prepare unit completes. Given ``running``, the snapshot registers there, so a job that
    ends meanwhile stops it at once (:mod:`mailshot.crm.sync.running`)."""
    at = current_time(session, now)
    job, mailshot = _held_prepare(session, unit_id, token)
    if job.recipients_total is None:
        tracked = running.track(job.id, session) if running is not None else nullcontext()
        # Bulk work: a Synchronise, a lease or a chunk's completion waiting for the write
        # lock goes before the snapshot's next slice. A small audience's snapshot is not:
        # it goes before large ones' slices too.
        small = snapshot is None and audience_snapshot.is_small(session, mailshot)
        with tracked as stop, nullcontext() if small else bulk_writes():
            try:
                totals = _take_snapshot(
                    session, job, mailshot, unit_id, token, at, snapshot, chunks_pending
                )
            except DBAPIError:
                if stop is None or not stop.is_set():
                    raise
                # Stopped mid-statement because the job ended: say so, change nothing.
                raise_why(session, unit_id)
    else:
        totals = (job.recipients_total, job.excluded_total or 0, job.chunks_total or 0)
    fields = PreparedCampaign(
        **CampaignFields.of(mailshot, job.id).__dict__,
        recipients_total=totals[0],
        excluded_total=totals[1],
        chunks_total=totals[2],
    )
    session.commit()
    return fields


def _take_snapshot(
    session: Session,
    job: Any,
    mailshot: Mailshot,
    unit_id: int,
    token: str,
    now: datetime,
    snapshot: SnapshotFn | None,
    chunks_pending: bool,
) -> tuple[int, int, int]:
    state = "pending" if chunks_pending else "waiting"
    cutter = _ChunkCutter(session, job.id, job.chunk_size, state)
    checkpoint = _checkpoint(session, unit_id, token, cutter if chunks_pending else None)
    try:
        drop_older_snapshots(session, mailshot.id, job.id, checkpoint)
        if snapshot is None:
            # Chunks already cut (by a worker that then died) may be written already:
            # keep what was committed and go on after it, rather than start again.
            resume = chunks_pending and cutter.next_no > 0
            counts = _default_snapshot(session, job.id, mailshot, checkpoint, resume)
        else:
            counts = snapshot(session, job.id, mailshot)
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
    included = _written(session, job.id)
    excluded = int(sum(counts.excluded.values()))
    cutter.cut(session, included, final=True)
    chunks_total = cutter.next_no
    session.execute(
        update(jobs)
        .where(jobs.c.id == job.id)
        .values(recipients_total=included, excluded_total=excluded, chunks_total=chunks_total)
    )
    if included == 0:
        reasons = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in counts.excluded.items() if n)
        empty = AppError(
            errors.SYNC_AUDIENCE_EMPTY,
            name=mailshot.name,
            excluded=excluded,
            reasons=reasons or "its source has no members",
            job_id=job.id,
        )
        # Keep the exclusions (they say why nobody is left) and fail the job.
        fail_held_unit(session, unit_id, token, empty, now)
        raise empty
    session.execute(insert(units), [_unit_row(job.id, "finalize", "waiting")])
    return included, excluded, chunks_total


def drop_older_snapshots(
    session: Session, mailshot_id: int, job_id: int, checkpoint: Checkpoint | None = None
) -> None:
    """Delete the snapshots of the mailshot's earlier, ended jobs: in batches of
    :data:`DROP_BATCH` rows with ``checkpoint`` between them, else in the caller's
    transaction. Only the jobs that still hold rows are visited (one index probe each, in
    one statement), so a mailshot synchronised a thousand times does not cost its next
    prepare two thousand deletes."""
    holds_rows = or_(
        *(
            select(table.c.job_id).where(table.c.job_id == jobs.c.id).exists()
            for table in (recipients, exclusions)
        )
    )
    older = session.scalars(
        select(jobs.c.id).where(
            jobs.c.mailshot_id == mailshot_id,
            jobs.c.id < job_id,
            jobs.c.state.not_in(JOB_ACTIVE),
            holds_rows,
        )
    ).all()
    for old in older:
        for table, key in ((recipients, recipients.c.seq), (exclusions, exclusions.c.person_id)):
            stmt = delete(table).where(table.c.job_id == old)
            if checkpoint is None:
                session.execute(stmt)
                continue
            while True:
                batch = select(key).where(table.c.job_id == old).order_by(key).limit(DROP_BATCH)
                result = session.execute(stmt.where(key.in_(batch.scalar_subquery())))
                if int(result.rowcount) < DROP_BATCH:  # type: ignore[attr-defined]
                    break
                checkpoint(True)


def _check_readable(session: Session, job_id: int, last_seq: int) -> None:
    """The range up to ``last_seq`` is written: the snapshot is complete, or a chunk unit
    already covers it (chunks are cut only from committed slices)."""
    total = session.execute(select(jobs.c.recipients_total).where(jobs.c.id == job_id)).first()
    if total is None:
        raise AppError(NOT_FOUND, what="sync job", id=job_id)
    if (
        total[0] is None
        and not session.execute(
            select(units.c.id)
            .where(units.c.job_id == job_id, units.c.kind == "chunk", units.c.last_seq >= last_seq)
            .limit(1)
        ).first()
    ):
        raise AppError(errors.SYNC_NO_SNAPSHOT, job_id=job_id)


def read_recipients_json(session: Session, job_id: int, first_seq: int, last_seq: int) -> bytes:
    """The recipients ``first_seq..last_seq`` of a job's snapshot as the JSON document
    ``{"columns": [...], "rows": [[...], ...]}`` (rows in ``seq`` order), rendered by the
    database itself (``json_group_array`` on SQLite, ``json_agg`` on PostgreSQL): the hot
    path of a sync builds no Python object per recipient. Read-only."""
    _check_readable(session, job_id, last_seq)
    cols = ", ".join(RECIPIENT_COLUMNS)
    params = {"job_id": job_id, "first_seq": first_seq, "last_seq": last_seq}
    where = "job_id = :job_id AND seq >= :first_seq AND seq <= :last_seq"
    if is_postgres(session):
        sql = (
            f"SELECT coalesce(json_agg(json_build_array({cols}) ORDER BY seq), '[]')::text "
            f"FROM sync_recipients WHERE {where}"
        )
    else:
        # The aggregate reads the rows in the order of its subquery (the primary key).
        sql = (
            f"SELECT json_group_array(json_array({cols})) FROM "
            f"(SELECT {cols} FROM sync_recipients WHERE {where} ORDER BY seq)"
        )
    rows: str = session.execute(text(sql), params).scalar_one()
    return b'{"columns":' + orjson.dumps(RECIPIENT_COLUMNS) + b',"rows":' + rows.encode() + b"}"


def read_recipients(
    session: Session, job_id: int, first_seq: int, last_seq: int
) -> list[tuple[Any, ...]]:
    """The recipients ``first_seq..last_seq`` of a job's snapshot, as rows of
    :data:`RECIPIENT_COLUMNS` in ``seq`` order (read-only)."""
    _check_readable(session, job_id, last_seq)
    cols = [recipients.c[name] for name in RECIPIENT_COLUMNS]
    result = session.execute(
        select(*cols)
        .where(
            recipients.c.job_id == job_id,
            recipients.c.seq >= first_seq,
            recipients.c.seq <= last_seq,
        )
        .order_by(recipients.c.seq)
    )
    return [tuple(row) for row in result]
