"""Sends of Integrated Campaigns, the user's side: start now or schedule, pause, resume,
cancel, resend the recipients in doubt, and read a send and its ledger. Each move is
checked against :data:`~mailshot.esp.services.send_states.SEND_MOVES` under the send
row's lock; the work itself is the send workers' (:mod:`mailshot.esp.sending.runner`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.db.engine import db_now, read_only
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.core.web.paging import keyset_page
from mailshot.esp import errors
from mailshot.esp.models import Campaign, Send, SendRecipient
from mailshot.esp.sending import compose
from mailshot.esp.sending.config import send_context
from mailshot.esp.services.campaigns import get_integrated
from mailshot.esp.services.send_states import SEND_MOVES, RecipientState, SendState
from mailshot.esp.services.sends_ledger import build_ledger, write_links
from mailshot.esp.services.sends_preflight import check_message, content_of, preflight
from mailshot.esp.services.sends_queue import (
    SEND_QUEUE,
    changed,
    doubt_lapsed,
    ledger,
    recount,
    sends,
    sent_if_done,
    units,
)
from mailshot.queue import IllegalMoveError, UnitState, end_job

S = SendState
#: What to do instead, when a state refuses a move.
_FIXES = {
    "paused": "Only a scheduled or sending send can be paused.",
    "resumed": "Only a paused send can be resumed.",
    "cancelled": "A send that is sent, cancelled or failed cannot be cancelled.",
    "resent": "Only the in-doubt recipients of a send that is sending, paused or sent can "
    "be resent.",
}


def _refuse(send: Send, action: str) -> AppError:
    return AppError(
        errors.SEND_STATE_FORBIDS,
        send_id=send.id,
        state=send.state,
        action=action,
        fix=_FIXES[action],
    )


def _locked(session: Session, send_id: int) -> Send:
    send = session.scalar(
        select(Send).where(Send.id == send_id).with_for_update(),
        execution_options={"populate_existing": True},
    )
    if send is None:
        raise AppError(errors.SEND_NOT_FOUND, what=f"with id {send_id}")
    return send


def get(session: Session, send_id: int) -> Send:
    send = session.get(Send, send_id)
    if send is None:
        raise AppError(errors.SEND_NOT_FOUND, what=f"with id {send_id}")
    return send


def of_campaign(session: Session, crm_mailshot_id: int) -> Send:
    campaign = get_integrated(session, crm_mailshot_id)
    send = session.scalar(select(Send).where(Send.campaign_id == campaign.id))
    if send is None:
        raise AppError(errors.SEND_NOT_FOUND, what=f"of campaign {campaign.id} yet")
    return send


def start(
    session: Session,
    settings: Settings,
    crm_mailshot_id: int,
    *,
    at: datetime | None = None,
    requested_by: str | None = None,
) -> Send:
    """Check the campaign (preflight), then in one transaction: the send (sending, or
    scheduled for ``at``), its ledger from the finalised audience, its units and links."""
    campaign = session.scalar(
        select(Campaign).where(Campaign.crm_mailshot_id == crm_mailshot_id).with_for_update()
    )
    if campaign is None:
        get_integrated(session, crm_mailshot_id)  # raises CAMPAIGN_NOT_FOUND
        raise AssertionError
    existing = session.scalar(select(Send).where(Send.campaign_id == campaign.id))
    if existing is not None:
        raise AppError(
            errors.SEND_ALREADY_EXISTS,
            campaign_id=campaign.id,
            send_id=existing.id,
            state=existing.state,
        )
    now = db_now(session)
    later = at is not None and at > now
    preflight(campaign, settings, now, at if later else None)
    content = content_of(campaign)
    send = Send(
        campaign_id=campaign.id,
        snapshot=campaign.finalised_snapshot,
        state=S.SCHEDULED if later else S.SENDING,
        scheduled_at=at if later else None,
        requested_at=now,
        requested_by=requested_by,
        subject=content.subject,
        from_name=content.from_name,
        from_address=content.from_address,
        reply_to=content.reply_to,
        html=content.html,
        text=content.text,
        list_name=content.list_name,
    )
    session.add(send)
    session.flush()
    total = build_ledger(
        session,
        send.id,
        campaign.id,
        int(campaign.finalised_snapshot or 0),
        batch=settings.send_batch_size,
        available_at=at if later else None,
        now=now,
    )
    send.total = send.pending_count = total
    compiled = compose.compile_message(content, send_context(settings, send.id))
    write_links(session, send.id, compiled.links)
    session.commit()
    return send


def pause(session: Session, send_id: int) -> Send:
    """Stop a scheduled or sending send: workers stop at their next window."""
    send = _locked(session, send_id)
    if not SEND_MOVES.allowed(S(send.state), S.PAUSED):
        raise _refuse(send, "paused")
    send.state = SEND_MOVES.move(S(send.state), S.PAUSED)
    send.paused_at = db_now(session)
    session.commit()
    return send


def resume(session: Session, send_id: int) -> Send:
    """Carry on a paused send: scheduled again if its time is still ahead, else sending
    (or sent at once, if its last recipients were done while it was paused)."""
    send = _locked(session, send_id)
    if send.state != S.PAUSED:
        raise _refuse(send, "resumed")
    now = db_now(session)
    ahead = send.scheduled_at is not None and send.scheduled_at > now and send.started_at is None
    target = S.SCHEDULED if ahead else S.SENDING
    session.execute(
        update(sends).where(sends.c.id == send_id).values(state=SEND_MOVES.move(S.PAUSED, target))
    )
    if target is S.SENDING:
        session.execute(update(sends).where(sends.c.id == send_id).values(**sent_if_done(now)))
    session.commit()
    session.refresh(send)
    return send


def cancel(session: Session, send_id: int) -> Send:
    """End a send: recipients not yet sent are cancelled (those in flight keep their
    outcome; those of a worker that died are in doubt)."""
    send = get(session, send_id)
    now = db_now(session)
    try:
        ended = end_job(SEND_QUEUE, session, send_id, S.CANCELLED, now=now)
    except IllegalMoveError:
        session.rollback()
        raise _refuse(get(session, send_id), "cancelled") from None
    if ended is None:
        session.rollback()
        raise _refuse(get(session, send_id), "cancelled")
    session.commit()
    session.refresh(send)
    return send


def resend_in_doubt(session: Session, send_id: int) -> tuple[Send, int]:
    """Make the send's in-doubt recipients pending again (an operator's decision: they may
    receive the message twice), reopening their units; a sent send is sending again."""
    has_doubt = exists().where(
        ledger.c.send_id == units.c.job_id,
        ledger.c.id.between(units.c.first_id, units.c.last_id),
        ledger.c.state == RecipientState.IN_DOUBT,
    )
    unit_ids = list(
        session.scalars(
            select(units.c.id).where(units.c.job_id == send_id, has_doubt).with_for_update()
        )
    )
    send = _locked(session, send_id)
    if send.state not in (S.SENDING, S.PAUSED, S.SENT):
        raise _refuse(send, "resent")
    if send.in_doubt_count == 0:
        raise AppError(errors.SEND_NOTHING_IN_DOUBT, send_id=send_id)
    now = db_now(session)
    moved = changed(
        session,
        update(ledger)
        .where(ledger.c.send_id == send_id, ledger.c.state == RecipientState.IN_DOUBT)
        .values(state=RecipientState.PENDING, next_attempt_at=None, changed_at=now),
    )
    session.execute(
        update(units)
        .where(units.c.id.in_(unit_ids), units.c.state == UnitState.DONE)
        .values(state=UnitState.PENDING, available_at=None, done_at=None)
    )
    if send.state == S.SENT:
        session.execute(
            update(sends)
            .where(sends.c.id == send_id)
            .values(state=SEND_MOVES.move(S.SENT, S.SENDING), finished_at=None)
        )
    recount(session, send_id)
    session.commit()
    session.refresh(send)
    return send, int(moved)


def settle(sessions: sessionmaker[Session], send_id: int) -> int:
    """Resolve what a dead worker left of an ended send: its rows still ``sending`` under a
    lease that lapsed after the cancel (no takeover happens on an ended send's units)
    become ``in_doubt``. Cheap when there is nothing to do (one read); answers how many
    rows moved. Called before a send is shown (pages, API, CLI)."""
    with read_only(sessions) as session:
        row = session.execute(
            select(sends.c.state, sends.c.sending_count).where(sends.c.id == send_id)
        ).first()
        session.rollback()
    if row is None or row.state not in _ENDED or not row.sending_count:
        return 0
    with sessions() as session:
        send = _locked(session, send_id)
        if send.state not in _ENDED:
            session.rollback()
            return 0
        moved = doubt_lapsed(session, send_id, db_now(session))
        if moved:
            recount(session, send_id)
        session.commit()
        return moved


def settle_campaign(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """:func:`settle` the send of the campaign with ESP id ``campaign_id``, if it has one."""
    with read_only(sessions) as session:
        send_id = session.scalar(select(Send.id).where(Send.campaign_id == campaign_id))
        session.rollback()
    if send_id is not None:
        settle(sessions, send_id)


_ENDED = (S.CANCELLED, S.FAILED)


def counts(send: Send) -> dict[str, int]:
    return {state.value: int(getattr(send, f"{state.value}_count")) for state in RecipientState}


@dataclass(frozen=True)
class Progress:
    """How far a send is: recipients in a final state, the rate since it started (per
    second) and the seconds left at that rate (None until known; 0 once finished)."""

    done: int
    rate_per_second: float | None
    eta_seconds: float | None

    def percent(self, total: int) -> int:
        return min(100, (100 * self.done) // total) if total else 0


def progress(send: Send, now: datetime | None = None) -> Progress:
    c = counts(send)
    done = send.total - c["pending"] - c["sending"] - c["deferred"]
    rate = eta = None
    if send.started_at is not None:
        end = send.finished_at or now or datetime.now(UTC)
        seconds = (end - send.started_at).total_seconds()
        if seconds > 0 and done > 0:
            rate = round(done / seconds, 2)
            eta = round((send.total - done) / rate, 1) if send.finished_at is None else 0.0
    return Progress(done, rate, eta)


def states_of(session: Session, campaign_ids: Iterable[int]) -> dict[int, str]:
    """The send state of each of these campaigns that has a send."""
    ids = list(campaign_ids)
    if not ids:
        return {}
    rows = session.execute(select(Send.campaign_id, Send.state).where(Send.campaign_id.in_(ids)))
    return {int(cid): str(state) for cid, state in rows}


def of_campaign_id(session: Session, campaign_id: int) -> Send | None:
    """The send of the campaign with ESP id ``campaign_id``, or None."""
    return session.scalar(select(Send).where(Send.campaign_id == campaign_id))


def recipients_page(
    session: Session, send_id: int, *, state: str | None, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    get(session, send_id)
    query = select(SendRecipient).where(SendRecipient.send_id == send_id)
    if state is not None:
        query = query.where(SendRecipient.state == state)
    return keyset_page(session, query, SendRecipient.id, cursor=cursor, limit=limit)


__all__ = [
    "cancel",
    "check_message",
    "counts",
    "get",
    "of_campaign",
    "of_campaign_id",
    "pause",
    "progress",
    "recipients_page",
    "resend_in_doubt",
    "resume",
    "settle",
    "settle_campaign",
    "start",
    "states_of",
]
