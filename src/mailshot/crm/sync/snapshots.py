"""A sync job's snapshot in the queue's terms: how many recipients it holds so far, the
chunk units cut from them as they are committed (:class:`ChunkCutter`), and dropping the
snapshots of a mailshot's earlier, ended jobs (:func:`drop_older_snapshots`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session

from mailshot.crm.services.snapshot import Checkpoint
from mailshot.crm.sync.states import JOB_ACTIVE, UnitKind, chunk_bounds
from mailshot.crm.sync.tables import exclusions, jobs, recipients, units
from mailshot.queue import UnitState

#: Rows of an older snapshot deleted per transaction.
DROP_BATCH = 50_000


def unit_row(
    job_id: int,
    kind: UnitKind,
    state: UnitState,
    no: int | None = None,
    first: int | None = None,
    last: int | None = None,
) -> dict[str, Any]:
    """The values of a new unit of the job."""
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


class ChunkCutter:
    """Cuts a job's snapshot into pending chunk units as it is written: every full chunk
    of the recipients committed so far, then (``final``) the rest. Resumes after the units
    that exist (a takeover of a prepare that had already cut some)."""

    def __init__(self, session: Session, job_id: int, chunk_size: int) -> None:
        self.job_id, self.chunk_size = job_id, chunk_size
        row = session.execute(
            select(func.count(), func.max(units.c.last_seq)).where(
                units.c.job_id == job_id, units.c.kind == UnitKind.CHUNK
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
            rows.append(
                unit_row(self.job_id, UnitKind.CHUNK, UnitState.PENDING, self.next_no, first, last)
            )
            self.next_no += 1
            self.next_first = last + 1
        if rows:
            session.execute(insert(units), rows)
        return len(rows)


def written(session: Session, job_id: int) -> int:
    """How many recipients the job's snapshot holds (seq is 0..N-1 without gaps, and
    max() is one probe of the primary key)."""
    return int(
        session.execute(
            select(func.coalesce(func.max(recipients.c.seq), -1) + 1).where(
                recipients.c.job_id == job_id
            )
        ).scalar_one()
    )


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
