"""The read of one chunk's recipients from a job's snapshot: the hot path of a sync,
rendered as JSON by the database itself."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mailshot.contracts.chunks import RECIPIENT_COLUMNS, chunk_json
from mailshot.core.errors import NOT_FOUND, AppError
from mailshot.crm.sync import errors
from mailshot.crm.sync.states import UnitKind
from mailshot.crm.sync.tables import is_postgres, jobs, units

#: The most recipients one read may ask for.
MAX_RECIPIENTS_PER_READ = 100_000


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
            .where(
                units.c.job_id == job_id,
                units.c.kind == UnitKind.CHUNK,
                units.c.last_seq >= last_seq,
            )
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
    return chunk_json(rows.encode())
