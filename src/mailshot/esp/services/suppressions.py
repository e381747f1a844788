"""Suppressions and bounces. A row per address: unsubscribed, or a bounce record that is
bounce-limited (suppressed) at one hard bounce or three soft ones. Writes are single
upserts, so concurrent bounces of one address are all counted."""

from __future__ import annotations

from sqlalchemy import case, delete, select
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import upsert
from mailshot.core.errors import AppError
from mailshot.core.web.paging import keyset_page
from mailshot.esp.errors import SUPPRESSION_NOT_FOUND
from mailshot.esp.models import Suppression
from mailshot.esp.models.campaigns import HARD_BOUNCE_LIMIT, SOFT_BOUNCE_LIMIT
from mailshot.esp.schemas.suppressions import BounceCreate, SuppressionCreate, SuppressionPublic
from mailshot.esp.services.common import normalise_email, require_address


def is_suppressed(row: Suppression) -> bool:
    return (
        row.reason == "unsubscribed"
        or row.hard_bounces >= HARD_BOUNCE_LIMIT
        or row.soft_bounces >= SOFT_BOUNCE_LIMIT
    )


def public(row: Suppression) -> SuppressionPublic:
    return SuppressionPublic(
        id=row.id,
        email=row.email_normalised,
        reason=row.reason,
        hard_bounces=row.hard_bounces,
        soft_bounces=row.soft_bounces,
        suppressed=is_suppressed(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _fetch(session: Session, norm: str) -> Suppression:
    row = session.scalars(
        select(Suppression).where(Suppression.email_normalised == norm),
        execution_options={"populate_existing": True},
    ).one()
    return row


def suppress(session: Session, data: SuppressionCreate) -> Suppression:
    """Record an unsubscribe or a bounce record. Unsubscribing overrides a bounce record's
    reason; bounce counts given replace the stored ones."""
    norm = normalise_email(require_address(data.email))
    hard, soft = data.hard_bounces, data.soft_bounces
    if data.reason == "bounced" and hard is None and soft is None:
        hard = HARD_BOUNCE_LIMIT
    now = utcnow()
    stmt = upsert(session, Suppression).values(
        email_normalised=norm,
        reason=data.reason,
        hard_bounces=hard or 0,
        soft_bounces=soft or 0,
        created_at=now,
        updated_at=now,
    )
    new = stmt.excluded
    set_: dict[str, object] = {"updated_at": new.updated_at}
    if data.reason == "unsubscribed":
        set_["reason"] = new.reason
    if hard is not None:
        set_["hard_bounces"] = new.hard_bounces
    if soft is not None:
        set_["soft_bounces"] = new.soft_bounces
    session.execute(stmt.on_conflict_do_update(index_elements=["email_normalised"], set_=set_))
    row = _fetch(session, norm)
    session.commit()
    return row


def bounce(session: Session, data: BounceCreate) -> Suppression:
    """Count one bounce of an address; at the limit it is suppressed."""
    norm = normalise_email(require_address(data.email))
    hard, soft = (1, 0) if data.kind == "hard" else (0, 1)
    now = utcnow()
    stmt = upsert(session, Suppression).values(
        email_normalised=norm,
        reason="bounced",
        hard_bounces=hard,
        soft_bounces=soft,
        created_at=now,
        updated_at=now,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["email_normalised"],
            set_={
                "hard_bounces": Suppression.hard_bounces + stmt.excluded.hard_bounces,
                "soft_bounces": Suppression.soft_bounces + stmt.excluded.soft_bounces,
                "reason": case(
                    (Suppression.reason == "unsubscribed", Suppression.reason), else_="bounced"
                ),
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )
    row = _fetch(session, norm)
    session.commit()
    return row


def remove(session: Session, email: str) -> None:
    """Delete the suppression or bounce record of an address."""
    norm = normalise_email(email)
    gone = session.execute(
        delete(Suppression).where(Suppression.email_normalised == norm).returning(Suppression.id)
    ).first()
    if gone is None:
        raise AppError(SUPPRESSION_NOT_FOUND, email=norm)
    session.commit()


def list_page(
    session: Session,
    *,
    cursor: str | None,
    limit: int,
    email: str | None = None,
    reason: str | None = None,
) -> tuple[list[Suppression], str | None]:
    query = select(Suppression)
    if email:
        query = query.where(Suppression.email_normalised == normalise_email(email))
    if reason:
        query = query.where(Suppression.reason == reason)
    return keyset_page(session, query, Suppression.id, cursor=cursor, limit=limit)
