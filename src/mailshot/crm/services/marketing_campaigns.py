"""Marketing campaigns and their members, each with a membership status.

When a campaign lists its ``member_statuses``, every member's status must be one of them
(and a status still in use cannot be dropped from the list); an empty list allows any.
Members are written in bulk with one set-based upsert per request.
"""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import apply_update, get_or_404, upsert
from mailshot.core.errors import NOT_FOUND, AppError
from mailshot.core.web.paging import keyset_page
from mailshot.crm.errors import CAMPAIGN_STATUSES_IN_USE, field_error
from mailshot.crm.models import CampaignMember, MarketingCampaign
from mailshot.crm.schemas.common import MembersWritten
from mailshot.crm.schemas.marketing_campaigns import (
    CampaignCreate,
    CampaignMembersAdd,
    CampaignMemberUpdate,
    CampaignUpdate,
)
from mailshot.crm.services.common import contains_pattern, require_people


def _check_dates(campaign: MarketingCampaign) -> None:
    if campaign.start_date and campaign.end_date and campaign.end_date < campaign.start_date:
        raise field_error(
            "end_date",
            "date_order",
            f"the end date {campaign.end_date} is before the start date {campaign.start_date}",
        )


def check_member_status(campaign: MarketingCampaign, status: str, field: str = "status") -> None:
    """Refuse a status the campaign does not use (any status when it lists none)."""
    allowed = campaign.member_statuses or []
    if allowed and status not in allowed:
        raise field_error(
            field,
            "member_status",
            f"'{status}' is not one of this campaign's member statuses ({', '.join(allowed)})",
            status=status,
        )


def create(session: Session, data: CampaignCreate) -> MarketingCampaign:
    campaign = MarketingCampaign(**data.model_dump())
    _check_dates(campaign)
    session.add(campaign)
    session.commit()
    return campaign


def get(session: Session, campaign_id: int) -> MarketingCampaign:
    return get_or_404(session, MarketingCampaign, campaign_id, "marketing campaign")


def update(session: Session, campaign_id: int, patch: CampaignUpdate) -> MarketingCampaign:
    campaign = get(session, campaign_id)
    changed = apply_update(campaign, patch)
    _check_dates(campaign)
    if changed.get("member_statuses"):
        in_use = session.scalars(
            select(CampaignMember.status)
            .where(
                CampaignMember.campaign_id == campaign_id,
                CampaignMember.status.not_in(campaign.member_statuses),
            )
            .distinct()
        ).all()
        if in_use:
            raise AppError(CAMPAIGN_STATUSES_IN_USE, statuses=", ".join(sorted(in_use)))
    session.commit()
    return campaign


def delete(session: Session, campaign_id: int) -> None:
    session.delete(get(session, campaign_id))
    session.commit()


def list_page(
    session: Session, *, cursor: str | None, limit: int, q: str | None = None
) -> tuple[list[MarketingCampaign], str | None]:
    query = select(MarketingCampaign)
    if q:
        query = query.where(MarketingCampaign.name.ilike(contains_pattern(q), escape="\\"))
    return keyset_page(session, query, MarketingCampaign.id, cursor=cursor, limit=limit)


# ---- members ------------------------------------------------------------------------------
def add_members(session: Session, campaign_id: int, data: CampaignMembersAdd) -> MembersWritten:
    """Make every person of ``data`` a member with ``data.status``; all or nothing."""
    campaign = get(session, campaign_id)
    check_member_status(campaign, data.status)
    ids = require_people(session, data.person_ids)
    m = CampaignMember.__table__
    before: dict[int, object] = {
        pid: value
        for pid, value in session.execute(
            select(m.c.person_id, m.c.status).where(
                m.c.campaign_id == campaign_id, m.c.person_id.in_(ids)
            )
        )
    }
    now = utcnow()
    stmt = upsert(session, CampaignMember)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.c.campaign_id, m.c.person_id],
        set_={"status": stmt.excluded.status, "updated_at": stmt.excluded.updated_at},
        where=m.c.status != stmt.excluded.status,
    )
    rows = [
        {
            "campaign_id": campaign_id,
            "person_id": pid,
            "status": data.status,
            "created_at": now,
            "updated_at": now,
        }
        for pid in ids
    ]
    session.execute(stmt, rows)
    session.commit()
    changed = sum(1 for i in ids if before.get(i) != data.status)
    return MembersWritten(written=len(ids), changed=changed)


def get_member(session: Session, campaign_id: int, person_id: int) -> CampaignMember:
    get(session, campaign_id)
    member = session.get(CampaignMember, (campaign_id, person_id))
    if member is None:
        raise AppError(NOT_FOUND, what=f"member of marketing campaign {campaign_id}", id=person_id)
    return member


def update_member(
    session: Session, campaign_id: int, person_id: int, patch: CampaignMemberUpdate
) -> CampaignMember:
    member = get_member(session, campaign_id, person_id)
    check_member_status(get(session, campaign_id), patch.status)
    member.status = patch.status
    session.commit()
    return member


def remove_member(session: Session, campaign_id: int, person_id: int) -> None:
    get_member(session, campaign_id, person_id)
    session.execute(
        sql_delete(CampaignMember).where(
            CampaignMember.campaign_id == campaign_id, CampaignMember.person_id == person_id
        )
    )
    session.commit()


def members_page(
    session: Session,
    campaign_id: int,
    *,
    cursor: str | None,
    limit: int,
    status: str | None = None,
) -> tuple[list[CampaignMember], str | None]:
    get(session, campaign_id)
    query = select(CampaignMember).where(CampaignMember.campaign_id == campaign_id)
    if status is not None:
        query = query.where(CampaignMember.status == status)
    return keyset_page(session, query, CampaignMember.person_id, cursor=cursor, limit=limit)
