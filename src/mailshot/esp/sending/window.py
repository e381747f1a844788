"""The send runner's statements on the ledger, each one short transaction that commits:
mark a window of a unit's recipients ``sending`` (suppressed ones ``suppressed``) before
their data goes out, write a window's outcomes, hand a unit back, or complete it.

Marking holds the unit (its lease, and on PostgreSQL the unit and send rows locked), so a
worker whose lease was taken over marks nothing; outcomes are written only to rows still
``sending``, under the send row's lock, with the cached counts moved by exact deltas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from mailshot.core.db.engine import db_now
from mailshot.core.errors import AppError
from mailshot.esp.models import Suppression
from mailshot.esp.models.campaigns import suppressed_clause
from mailshot.esp.sending.outcomes import DeliveryResult, Outcome
from mailshot.esp.services.audience import CONTACTS
from mailshot.esp.services.send_states import RecipientState, SendState
from mailshot.esp.services.sends_queue import (
    SEND_QUEUE,
    TABLES,
    add_counts,
    in_unit,
    ledger,
    sends,
    sent_if_done,
    units,
)
from mailshot.queue import LeaseOutcome, UnitState, complete, held_by, hold

R = RecipientState


class Marked(StrEnum):
    OK = "ok"  #: rows marked: send them
    EMPTY = "empty"  #: nothing due now, but windows are still in flight
    DONE = "done"  #: the unit is complete
    WAITING = "waiting"  #: only deferred rows left: the unit is handed back until due
    PAUSED = "paused"  #: the send is paused
    STOPPED = "stopped"  #: the send ended, or the lease was lost


@dataclass
class Window:
    status: Marked
    rows: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class RetryRule:
    """When a deferred recipient is tried again, and when it fails instead."""

    initial_seconds: float = 60.0
    max_seconds: float = 3600.0
    give_up_seconds: float = 3 * 86400.0

    def next_at(self, now: datetime, attempts: int) -> datetime:
        wait = min(self.max_seconds, self.initial_seconds * 2.0 ** min(max(attempts - 1, 0), 32))
        return now + timedelta(seconds=wait)


def mark(
    session: Session,
    unit_id: int,
    token: str,
    *,
    window: int,
    lease_seconds: float,
    in_flight: bool,
) -> Window:
    """Mark the unit's next ``window`` due recipients ``sending``; see :class:`Marked`."""
    try:
        held = hold(
            SEND_QUEUE, session, unit_id, token, columns=(units.c.first_id, units.c.last_id)
        )
    except AppError:
        return Window(Marked.STOPPED)
    if held.job_state != SendState.SENDING:
        session.rollback()
        return Window(Marked.PAUSED if held.job_state == SendState.PAUSED else Marked.STOPPED)
    now = db_now(session)
    rows_of_unit = in_unit(held.first_id, held.last_id, held.job_id)
    stopped = (Suppression.email_normalised == CONTACTS.c.email_normalised) & suppressed_clause()
    due = (
        select(
            ledger.c.id,
            ledger.c.state,
            ledger.c.email,
            ledger.c.contact_id,
            ledger.c.crm_person_id,
            CONTACTS.c.first_name,
            CONTACTS.c.last_name,
            CONTACTS.c.organisation,
            Suppression.reason.label("suppressed"),
        )
        .select_from(
            ledger.outerjoin(CONTACTS, CONTACTS.c.id == ledger.c.contact_id).outerjoin(
                Suppression, stopped
            )
        )
        .where(
            rows_of_unit,
            # IN, then the due test: with one OR of the two states SQLite's plan read
            # every pending row of the send (its index range per state lost the unit's
            # id range) and sorted them, at each window
            ledger.c.state.in_((R.PENDING, R.DEFERRED)),
            or_(ledger.c.state == R.PENDING, ledger.c.next_attempt_at <= now),
        )
        .order_by(ledger.c.id)
        .limit(window)
    )
    rows = session.execute(due).all()
    if not rows:
        return _nothing_due(session, unit_id, token, rows_of_unit, now, in_flight)
    suppressed = [r.id for r in rows if r.suppressed is not None]
    going = [r for r in rows if r.suppressed is None]
    if suppressed:
        session.execute(
            update(ledger)
            .where(ledger.c.id.in_(suppressed))
            .values(state=R.SUPPRESSED, reply_text="suppressed at send time", changed_at=now)
        )
    if going:
        session.execute(
            update(ledger)
            .where(ledger.c.id.in_([r.id for r in going]))
            .values(
                state=R.SENDING,
                attempts=ledger.c.attempts + 1,
                first_attempt_at=func.coalesce(ledger.c.first_attempt_at, now),
                changed_at=now,
            )
        )
    pending = sum(1 for r in rows if r.state == R.PENDING)
    deltas = {
        R.PENDING: -pending,
        R.DEFERRED: -(len(rows) - pending),
        R.SENDING: len(going),
        R.SUPPRESSED: len(suppressed),
    }
    add_counts(session, held.job_id, deltas)
    session.execute(
        update(units)
        .where(units.c.id == unit_id)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    if not going:  # a window of suppressed rows alone may be the send's last
        session.execute(update(sends).where(sends.c.id == held.job_id).values(**sent_if_done(now)))
    session.commit()
    return Window(Marked.OK, going)


def finish(session: Session, unit_id: int, token: str) -> Marked:
    """End a unit whose windows are all written (its worker went on to another unit
    meanwhile): complete it, or hand it back when rows are pending again (resent) or
    deferred (available when the first is due), or when its send is paused."""
    try:
        held = hold(
            SEND_QUEUE, session, unit_id, token, columns=(units.c.first_id, units.c.last_id)
        )
    except AppError:
        return Marked.STOPPED
    if held.job_state != SendState.SENDING:
        session.rollback()
        if held.job_state != SendState.PAUSED:
            return Marked.STOPPED
        release(session, unit_id, token, None)
        return Marked.PAUSED
    now = db_now(session)
    rows_of_unit = in_unit(held.first_id, held.last_id, held.job_id)
    pending = session.scalar(
        select(ledger.c.id).where(rows_of_unit, ledger.c.state == R.PENDING).limit(1)
    )
    if pending is not None:
        release(session, unit_id, token, None, now)
        return Marked.WAITING
    return _nothing_due(session, unit_id, token, rows_of_unit, now, False).status


def _nothing_due(
    session: Session, unit_id: int, token: str, rows_of_unit: Any, now: datetime, in_flight: bool
) -> Window:
    if in_flight:
        session.rollback()
        return Window(Marked.EMPTY)
    wait = session.scalar(
        select(func.min(ledger.c.next_attempt_at)).where(rows_of_unit, ledger.c.state == R.DEFERRED)
    )
    if wait is not None:
        release(session, unit_id, token, wait, now)
        return Window(Marked.WAITING)
    try:
        complete(SEND_QUEUE, session, unit_id, token, now=now)
    except AppError:
        return Window(Marked.STOPPED)
    return Window(Marked.DONE)


def release(
    session: Session, unit_id: int, token: str, at: datetime | None, now: datetime | None = None
) -> None:
    """Hand the unit back: pending again, leasable from ``at`` (None: at once)."""
    now = now or db_now(session)
    back = session.execute(
        update(units)
        .where(held_by(SEND_QUEUE, unit_id, token))
        .values(state=UnitState.PENDING, available_at=at, lease_expires_at=None)
        .returning(units.c.id)
    ).first()
    if back is not None:
        log = TABLES.lease_log
        session.execute(
            update(log)
            .where(log.c.unit_id == unit_id, log.c.lease_token == token)
            .values(ended_at=now, outcome=LeaseOutcome.RETRY)
        )
    session.commit()


_TARGET = {Outcome.SENT: R.SENT, Outcome.FAILED: R.FAILED, Outcome.IN_DOUBT: R.IN_DOUBT}


def write_outcomes(
    session: Session, send_id: int, results: list[DeliveryResult], rule: RetryRule
) -> dict[RecipientState, int]:
    """Record a window's results (to rows still ``sending``); answer the count moves."""
    session.execute(select(sends.c.id).where(sends.c.id == send_id).with_for_update())
    now = db_now(session)
    ids = [r.key for r in results]
    mine = {
        row.id: row
        for row in session.execute(
            select(ledger.c.id, ledger.c.attempts, ledger.c.first_attempt_at).where(
                ledger.c.id.in_(ids), ledger.c.state == R.SENDING
            )
        )
    }
    params: list[dict[str, Any]] = []
    deltas: dict[RecipientState, int] = {R.SENDING: -len(mine)}
    for result in results:
        row = mine.get(result.key)
        if row is None:
            continue
        state, attempts, next_at = _TARGET.get(result.outcome), row.attempts, None
        if state is None:  # deferred
            if not result.attempted:
                attempts -= 1
                state = R.DEFERRED if result.retry_after else R.PENDING
                if result.retry_after:
                    next_at = now + timedelta(seconds=result.retry_after)
            elif (
                row.first_attempt_at is not None
                and (now - row.first_attempt_at).total_seconds() >= rule.give_up_seconds
            ):
                state = R.FAILED
            else:
                state = R.DEFERRED
                next_at = rule.next_at(now, attempts)
                if result.retry_after:
                    next_at = max(next_at, now + timedelta(seconds=result.retry_after))
        deltas[state] = deltas.get(state, 0) + 1
        params.append(
            {
                "rid": result.key,
                "st": state.value,
                "att": max(attempts, 0),
                "nxt": next_at,
                "code": result.smtp_code,
                "enh": result.enhanced_status,
                "txt": (result.text or "")[:2000],
                "qid": result.queue_id,
                "rel": result.relay,
                "at": now,
            }
        )
    if params:
        session.execute(
            update(ledger)
            .where(ledger.c.id == bindparam("rid"))
            .values(
                state=bindparam("st"),
                attempts=bindparam("att"),
                next_attempt_at=bindparam("nxt"),
                reply_code=bindparam("code"),
                enhanced_status=bindparam("enh"),
                reply_text=bindparam("txt"),
                queue_id=bindparam("qid"),
                relay=bindparam("rel"),
                changed_at=bindparam("at"),
            ),
            params,
        )
        add_counts(session, send_id, deltas)
        session.execute(update(sends).where(sends.c.id == send_id).values(**sent_if_done(now)))
    session.commit()
    return deltas
