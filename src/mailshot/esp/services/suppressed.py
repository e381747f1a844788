"""Which members of a campaign's audience snapshot the ESP will not send to, and why.

The bridge reads this after finalising a snapshot and relays it to the CRM, which records
each person as excluded with the reason ``suppressed_at_esp``. One set-based query per page
(suppressions joined to contacts by normalised address, then to the snapshot's audience
rows), keyset-paged by the CRM person id; the same rule as finalize's ``suppressed_count``
(:func:`mailshot.esp.models.campaigns.suppressed_clause`), so the two always agree.
"""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from mailshot.contracts.suppressed import SuppressedMember, SuppressedPage
from mailshot.core.errors import AppError
from mailshot.core.web.paging import decode_cursor, encode_cursor
from mailshot.esp import errors
from mailshot.esp.models import Campaign, Suppression
from mailshot.esp.models.campaigns import suppressed_clause
from mailshot.esp.services.audience import CONTACTS, RECIPIENTS


def suppressed_page(
    session: Session,
    crm_mailshot_id: int,
    *,
    snapshot: int | None,
    cursor: str | None,
    limit: int,
) -> SuppressedPage:
    """One page of the snapshot's suppressed audience members, by CRM person id. Without
    ``snapshot``, the campaign's finalised snapshot (else its current one)."""
    campaign = session.execute(
        select(
            Campaign.id,
            Campaign.finalised_snapshot,
            Campaign.current_snapshot,
            Campaign.audience_count,
        ).where(Campaign.crm_mailshot_id == crm_mailshot_id)
    ).first()
    if campaign is None:
        raise AppError(errors.CAMPAIGN_NOT_FOUND, crm_mailshot_id=crm_mailshot_id)
    snap = snapshot if snapshot is not None else campaign[1] or campaign[2]
    if snap is None:
        return SuppressedPage(items=[], next_cursor=None, limit=limit, snapshot=0)
    reason = case((Suppression.reason == "unsubscribed", "unsubscribed"), else_="bounced")
    in_snapshot = (
        (RECIPIENTS.c.campaign_id == campaign[0])
        & (RECIPIENTS.c.snapshot == snap)
        & RECIPIENTS.c.crm_person_id.is_not(None)
    )
    query = (
        select(RECIPIENTS.c.crm_person_id, CONTACTS.c.email, reason.label("reason"))
        .select_from(RECIPIENTS)
        .join(CONTACTS, CONTACTS.c.id == RECIPIENTS.c.contact_id)
        .join(Suppression, Suppression.email_normalised == CONTACTS.c.email_normalised)
        .where(in_snapshot, suppressed_clause())
        .order_by(RECIPIENTS.c.crm_person_id)
        .limit(limit + 1)
    )
    suppressions = session.scalar(select(func.count()).select_from(Suppression)) or 0
    if suppressions <= campaign[3]:
        # Fewer suppressions than audience rows (the usual case): drive from them, one
        # primary-key probe of the audience per suppressed contact, not a scan of it.
        suppressed_contacts = (
            select(CONTACTS.c.id)
            .join(Suppression, Suppression.email_normalised == CONTACTS.c.email_normalised)
            .where(suppressed_clause())
        )
        query = query.where(RECIPIENTS.c.contact_id.in_(suppressed_contacts))
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(RECIPIENTS.c.crm_person_id > after)
    rows = session.execute(query).all()
    items = [
        SuppressedMember(crm_person_id=int(r[0]), email=str(r[1]), reason=r[2])
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor(items[-1].crm_person_id) if len(rows) > limit else None
    return SuppressedPage(items=items, next_cursor=next_cursor, limit=limit, snapshot=int(snap))
