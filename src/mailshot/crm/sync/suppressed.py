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

from mailshot.core.db.sqlhelpers import upsert
from mailshot.crm.models import Person, SyncExclusion
from mailshot.crm.services.audience import SUPPRESSED_AT_ESP
from mailshot.crm.sync.kinds import SYNC_QUEUE
from mailshot.crm.sync.states import UnitKind
from mailshot.queue import hold

PEOPLE = cast(Table, Person.__table__)
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
    # Locks the unit and job rows: a concurrent completion or takeover waits for this call.
    held = hold(SYNC_QUEUE, session, unit_id, token, kind=UnitKind.FINALIZE)
    job_id = int(held.job_id)
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
