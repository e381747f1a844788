"""People the ESP will not send to, as the bridge relays them after finalising a snapshot:
recorded as exclusions of the job with the reason ``suppressed_at_esp``.

The call is held to the same lease discipline as every other bridge call: only the worker
holding the job's ``finalize`` unit with its current token may record (else 409
``SYNC_LEASE_LOST`` / ``SYNC_JOB_ENDED``, or 422 ``SYNC_WRONG_UNIT_KIND``). Recording is
idempotent: rows are upserted keyed (job, person), so a batch sent twice (a retried or
taken-over finalize) records each person once. The person stays in ``sync_recipients``:
the ESP holds the address in the campaign's audience but will not send to it. The counts
the job completes with are computed from these rows (:mod:`mailshot.crm.sync.final_counts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, literal, select
from sqlalchemy.orm import Session

from mailshot.crm.models import Person, SyncExclusion
from mailshot.crm.services.audience import SUPPRESSED_AT_ESP
from mailshot.crm.services.common import upsert
from mailshot.crm.sync import errors
from mailshot.crm.sync.states import JOB_ACTIVE
from mailshot.crm.sync.tables import is_postgres, jobs, units
from mailshot.crm.sync.work import raise_why
from mailshot.errors import AppError

PEOPLE = cast(Table, Person.__table__)
#: The most people one call may carry (one page of the ESP's listing).
MAX_PEOPLE_PER_CALL = 10_000
#: People per INSERT ... SELECT (bounded IN lists on both engines).
_SLICE = 1000


@dataclass(frozen=True)
class Recorded:
    unit_id: int
    job_id: int
    people: int


def record_suppressed(
    session: Session, unit_id: int, token: str, people: Sequence[tuple[int, str]]
) -> Recorded:
    """Record ``people`` ((CRM person id, ESP reason) pairs) as excluded from the job of
    the finalize unit ``unit_id`` held with ``token``, reason ``suppressed_at_esp``;
    commit. Unknown person ids (deleted since the snapshot) are skipped."""
    unit_q = select(units.c.kind, units.c.state, units.c.lease_token, units.c.job_id).where(
        units.c.id == unit_id
    )
    if is_postgres(session):
        # Lock the unit row: a concurrent completion or takeover waits for this call.
        unit_q = unit_q.with_for_update()
    unit = session.execute(unit_q).first()
    if unit is None or unit.state != "leased" or unit.lease_token != token:
        raise_why(session, unit_id)
    if unit.kind != "finalize":
        session.rollback()
        raise AppError(
            errors.SYNC_WRONG_UNIT_KIND, unit_id=unit_id, kind=unit.kind, expected="finalize"
        )
    job_id = int(unit.job_id)
    state = session.scalar(select(jobs.c.state).where(jobs.c.id == job_id))
    if state not in JOB_ACTIVE:
        session.rollback()
        raise AppError(errors.SYNC_JOB_ENDED, job_id=job_id, state=state)
    ids = sorted({int(pid) for pid, _ in people})
    for start in range(0, len(ids), _SLICE):
        some = ids[start : start + _SLICE]
        rows = select(
            literal(job_id), PEOPLE.c.id, literal(SUPPRESSED_AT_ESP), PEOPLE.c.email
        ).where(PEOPLE.c.id.in_(some))
        stmt = (
            upsert(session, SyncExclusion)
            .from_select(["job_id", "person_id", "reason", "email"], rows)
            .on_conflict_do_nothing(index_elements=["job_id", "person_id"])
        )
        session.execute(stmt)
    session.commit()
    return Recorded(unit_id=unit_id, job_id=job_id, people=len(ids))
