"""The feed of sends changed since a cursor (``GET /sends?changed_after=``), which the bridge
relays to the CRM: each send of an Integrated Campaign as a :class:`SendSummary`, oldest
change first, at most ``limit`` a call.

Every UPDATE of a ``sends`` row moves its ``changed_at`` (the database clock at that
statement) and ``version`` (see :mod:`mailshot.esp.models.sends`). A change is served only
once it is :data:`SETTLE_SECONDS` old: on PostgreSQL a transaction that wrote a send row a
moment before another may commit after it, and a cursor already past it would skip it.
Every writer of a send row writes it last, just before its commit, so a change older than
that is committed or never will be."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.contracts.sends import (
    SendCounts,
    SendErrorInfo,
    SendFeedPage,
    SendSummary,
    feed_cursor,
    parse_feed_cursor,
)
from mailshot.core.db.engine import db_now, read_only
from mailshot.core.errors import AppError
from mailshot.esp import errors
from mailshot.esp.models import Campaign, Send
from mailshot.esp.services import sends

#: How old a change must be before the feed serves it.
SETTLE_SECONDS = 1.0


def summary(send: Send, campaign: Campaign, now: datetime) -> SendSummary:
    """The send as the CRM is told of it."""
    moving = sends.progress(send, now)
    error = None
    if send.last_error_code:
        error = SendErrorInfo(
            code=send.last_error_code[:64],
            message=(send.last_error_message or "")[:2000],
            fix=send.last_error_fix[:2000] if send.last_error_fix else None,
        )
    assert campaign.crm_mailshot_id is not None
    return SendSummary(
        send_id=send.id,
        version=send.version,
        changed_at=send.changed_at,
        crm_mailshot_id=campaign.crm_mailshot_id,
        crm_mailshot_uid=str(campaign.crm_mailshot_uid) if campaign.crm_mailshot_uid else None,
        esp_campaign_id=campaign.id,
        state=send.state,
        total=send.total,
        counts=SendCounts(**sends.counts(send)),
        scheduled_at=send.scheduled_at,
        started_at=send.started_at,
        finished_at=send.finished_at,
        paused_at=send.paused_at,
        rate_per_second=moving.rate_per_second,
        eta_seconds=moving.eta_seconds,
        last_error=error,
    )


def _after(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        return parse_feed_cursor(cursor)
    except ValueError:
        raise AppError(errors.SEND_FEED_CURSOR_INVALID, cursor=cursor[:80]) from None


def _settle_ended(sessions: sessionmaker[Session], limit: int) -> None:
    """Settle the ended sends that still count rows ``sending`` (a worker that died after
    the cancel), so the feed reports them as their pages would (see ``sends.settle``)."""
    with read_only(sessions) as session:
        ids = list(
            session.scalars(
                select(Send.id)
                .where(Send.state.in_(("cancelled", "failed")), Send.sending_count > 0)
                .limit(limit)
            )
        )
        session.rollback()
    for send_id in ids:
        sends.settle(sessions, send_id)


def changed(sessions: sessionmaker[Session], cursor: str | None, limit: int) -> SendFeedPage:
    """The sends of Integrated Campaigns changed after ``cursor`` (None: from the first),
    oldest change first, at most ``limit``."""
    after = _after(cursor)
    _settle_ended(sessions, limit)
    with read_only(sessions) as session:
        now = db_now(session)
        until = now - timedelta(seconds=SETTLE_SECONDS)
        query = (
            select(Send, Campaign)
            .join(Campaign, Campaign.id == Send.campaign_id)
            .where(Campaign.crm_mailshot_id.is_not(None), Send.changed_at <= until)
            .order_by(Send.changed_at, Send.id)
            .limit(limit)
        )
        if after is not None:
            at, send_id = after
            query = query.where(
                or_(Send.changed_at > at, and_(Send.changed_at == at, Send.id > send_id))
            )
        rows = session.execute(query).all()
        items = [summary(send, campaign, now) for send, campaign in rows]
        session.rollback()
    next_cursor = cursor
    if items:
        next_cursor = feed_cursor(items[-1].changed_at, items[-1].send_id)
    return SendFeedPage(items=items, next_cursor=next_cursor, more=len(items) == limit)
