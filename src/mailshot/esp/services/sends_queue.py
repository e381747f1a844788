"""The send queue over :mod:`mailshot.queue`: :data:`SEND_QUEUE` (the ESP's ``sends``,
``send_units`` and ``send_lease_log``), what a send does when a unit is claimed or
completed or the send ends, and the ledger's counts.

- a unit claimed: a scheduled send is ``sending``; on a takeover, the unit's recipients
  still ``sending`` (their worker died with their data perhaps out) become ``in_doubt``.
- a unit completed: the send is ``sent`` once no recipient is pending, sending or deferred.
- the send ends cancelled or failed: recipients never sent are ``cancelled``; those still
  ``sending`` under a lapsed lease are ``in_doubt``, and so are those of a lease that
  lapses later (its worker died after the end: :func:`doubt_lapsed`, by ``sends.settle``).

Lock order (PostgreSQL): unit rows, then the send row, then ledger rows. Every writer of
a send's ledger holds its send row, so the cached counts stay exact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, and_, case, exists, func, select, update
from sqlalchemy.orm import Session

from mailshot.esp import errors
from mailshot.esp.models import Send, SendLeaseLog, SendRecipient, SendUnit
from mailshot.esp.services.send_states import (
    COUNT_COLUMNS,
    SEND_MOVES,
    RecipientState,
    SendState,
    UnitKind,
)
from mailshot.queue import Fault, KindHooks, Lease, QueueErrors, QueueSpec, QueueTables

TABLES = QueueTables.of(Send, SendUnit, SendLeaseLog)
sends, units = TABLES.jobs, TABLES.units
ledger = cast(Table, SendRecipient.__table__)
R = RecipientState
#: The reply text of a recipient left in doubt by a worker that died.
STOPPED_ANSWERING = "the worker sending it stopped answering"


def in_unit(first_id: Any, last_id: Any, send_id: Any) -> Any:
    """The ledger rows of one unit."""
    return and_(ledger.c.send_id == send_id, ledger.c.id.between(first_id, last_id))


def changed(session: Session, statement: Any) -> int:
    """Run an INSERT or UPDATE and answer how many rows it wrote."""
    result = session.execute(statement, execution_options={"preserve_rowcount": True})
    return int(result.rowcount)  # type: ignore[attr-defined]


def add_counts(session: Session, send_id: int, deltas: dict[RecipientState, int]) -> None:
    """Move the send's cached counts by ``deltas`` (under its row's lock)."""
    values = {
        COUNT_COLUMNS[state]: sends.c[COUNT_COLUMNS[state]] + n for state, n in deltas.items() if n
    }
    if values:
        session.execute(update(sends).where(sends.c.id == send_id).values(**values))


def recount(session: Session, send_id: int) -> dict[str, int]:
    """Count the ledger of a send by state and store the counts (for the rare moves that
    touch many rows at once: cancel, resend)."""
    rows = session.execute(
        select(ledger.c.state, func.count())
        .where(ledger.c.send_id == send_id)
        .group_by(ledger.c.state)
    ).all()
    found = {str(state): int(n) for state, n in rows}
    values = {COUNT_COLUMNS[s]: found.get(s.value, 0) for s in RecipientState}
    session.execute(update(sends).where(sends.c.id == send_id).values(**values))
    return found


def sent_if_done(now: datetime) -> dict[str, Any]:
    """Values that move a sending send to ``sent`` once nothing is left to do."""
    done = and_(
        sends.c.state == SendState.SENDING,
        sends.c.pending_count + sends.c.sending_count + sends.c.deferred_count == 0,
    )
    return {
        "state": case(
            (done, SEND_MOVES.move(SendState.SENDING, SendState.SENT)), else_=sends.c.state
        ),
        "finished_at": case((done, now), else_=sends.c.finished_at),
    }


def step(row: Row[Any]) -> str:
    return f"batch of recipients {row.first_id} to {row.last_id}"


def _claimed(session: Session, lease: Lease) -> None:
    if not lease.takeover:
        return
    doubt = changed(
        session,
        update(ledger)
        .where(
            in_unit(lease.unit.first_id, lease.unit.last_id, lease.job_id),
            ledger.c.state == R.SENDING,
        )
        .values(state=R.IN_DOUBT, reply_text=STOPPED_ANSWERING),
    )
    add_counts(session, lease.job_id, {R.SENDING: -doubt, R.IN_DOUBT: doubt})


def _completed(session: Session, done: Row[Any], _report: Any, now: datetime) -> str:
    state = session.execute(
        update(sends)
        .where(sends.c.id == done.job_id)
        .values(**sent_if_done(now))
        .returning(sends.c.state)
    ).scalar_one()
    return str(state)


def doubt_lapsed(session: Session, send_id: int, now: datetime) -> int:
    """Turn the send's rows still ``sending`` of a unit whose lease is gone or lapsed into
    ``in_doubt`` (their worker died with their data perhaps out); answer how many. The
    caller holds the send row and recounts."""
    lapsed = exists().where(
        units.c.job_id == send_id,
        ledger.c.id.between(units.c.first_id, units.c.last_id),
        (units.c.lease_expires_at.is_(None)) | (units.c.lease_expires_at < now),
    )
    return changed(
        session,
        update(ledger)
        .where(ledger.c.send_id == send_id, ledger.c.state == R.SENDING, lapsed)
        .values(state=R.IN_DOUBT, reply_text=STOPPED_ANSWERING, changed_at=now),
    )


def _ended(
    session: Session, job: Row[Any], state: str, _fault: Fault | None, now: datetime
) -> None:
    send_id = job.id
    session.execute(
        update(ledger)
        .where(ledger.c.send_id == send_id, ledger.c.state.in_((R.PENDING, R.DEFERRED)))
        .values(state=R.CANCELLED, changed_at=now)
    )
    doubt_lapsed(session, send_id, now)
    recount(session, send_id)


SEND_QUEUE = QueueSpec(
    tables=TABLES,
    moves=SEND_MOVES,
    errors=QueueErrors(
        lease_lost=errors.SEND_LEASE_LOST,
        job_ended=errors.SEND_ENDED,
        wrong_kind=errors.SEND_WRONG_UNIT_KIND,
        unit_kills_workers=errors.SEND_UNIT_KILLS_WORKERS,
        retries_exhausted=errors.SEND_RETRIES_EXHAUSTED,
        unit_noun="send unit",
    ),
    kinds={
        UnitKind.BATCH: KindHooks(
            on_complete=_completed,
            job_values_on_claim={
                "state": case(
                    (
                        sends.c.state == SendState.SCHEDULED,
                        SEND_MOVES.move(SendState.SCHEDULED, SendState.SENDING),
                    ),
                    else_=sends.c.state,
                )
            },
            on_claim=_claimed,
        )
    },
    unit_columns=("first_id", "last_id"),
    job_columns=("campaign_id", "state"),
    describe=step,
    on_job_end=_ended,
)
#: The units a worker may lease: those of sends scheduled (once due) or sending.
LEASABLE_LANE = sends.c.state.in_((SendState.SCHEDULED, SendState.SENDING))
