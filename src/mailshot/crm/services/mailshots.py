"""Mailshots: create, read, update, delete, list.

Rules checked on the final state of every write (so a PATCH obeys them as a create does):
the audience fields match the audience source (a leftover id of the other source is
cleared when the source changes; sending one with the wrong source is refused), referenced
rows exist, campaign member statuses are the campaign's, a recurring mailshot has a
period. With a template and no content of its own, the template's content is copied in.
The ``sync_*`` columns are never written here: the sync queue owns them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailshot.core.db.sqlhelpers import apply_update, get_or_404
from mailshot.core.web.paging import keyset_page
from mailshot.crm.errors import field_error
from mailshot.crm.models import MailingList, Mailshot, MarketingCampaign, Template
from mailshot.crm.schemas.mailshots import MailshotCreate, MailshotUpdate
from mailshot.crm.services.common import contains_pattern, require_row
from mailshot.crm.services.marketing_campaigns import check_member_status


def _copy_template(session: Session, ms: Mailshot) -> None:
    if ms.template_id is None:
        return
    template = session.get(Template, ms.template_id)
    if template is None:
        return
    if not ms.html:
        ms.html = template.html
    if not ms.text:
        ms.text = template.text
    if not ms.subject:
        ms.subject = template.subject


def _clear_or_refuse(ms: Mailshot, sent: dict[str, Any], field: str, empty: Any) -> None:
    """A field of the source not chosen: refuse it if sent now, clear a leftover."""
    if sent.get(field, empty) not in (None, empty):
        other = "marketing_campaign" if ms.audience_source == "mailing_list" else "mailing_list"
        raise field_error(
            field,
            "audience_source",
            f"is used only with audience_source '{other}', "
            f"and this mailshot's is '{ms.audience_source}'",
        )
    setattr(ms, field, empty)


def _check(session: Session, ms: Mailshot, sent: dict[str, Any], creating: bool) -> None:
    if ms.audience_source == "mailing_list":
        _clear_or_refuse(ms, sent, "marketing_campaign_id", None)
        _clear_or_refuse(ms, sent, "campaign_member_statuses", [])
        if creating or "mailing_list_id" in sent:
            require_row(session, MailingList, ms.mailing_list_id, "mailing_list_id")
    else:
        _clear_or_refuse(ms, sent, "mailing_list_id", None)
        if creating or "marketing_campaign_id" in sent or "campaign_member_statuses" in sent:
            require_row(
                session, MarketingCampaign, ms.marketing_campaign_id, "marketing_campaign_id"
            )
            campaign = (
                session.get(MarketingCampaign, ms.marketing_campaign_id)
                if ms.marketing_campaign_id is not None
                else None
            )
            if campaign is not None:
                for status in ms.campaign_member_statuses or []:
                    check_member_status(campaign, status, "campaign_member_statuses")
    if creating or "template_id" in sent:
        require_row(session, Template, ms.template_id, "template_id")
    if ms.mailshot_type == "refresh_recurring":
        if ms.refresh_period_hours is None:
            raise field_error(
                "refresh_period_hours",
                "required_for_type",
                "is required when mailshot_type is 'refresh_recurring'",
            )
    elif ms.refresh_period_hours is not None:
        if sent.get("refresh_period_hours") is not None:
            raise field_error(
                "refresh_period_hours",
                "only_for_type",
                "is used only when mailshot_type is 'refresh_recurring'",
            )
        ms.refresh_period_hours = None


def create(session: Session, data: MailshotCreate) -> Mailshot:
    ms = Mailshot(**data.model_dump())
    _check(session, ms, data.model_dump(exclude_unset=True), creating=True)
    _copy_template(session, ms)
    session.add(ms)
    session.commit()
    return ms


def get(session: Session, mailshot_id: int) -> Mailshot:
    return get_or_404(session, Mailshot, mailshot_id, "mailshot")


def update(session: Session, mailshot_id: int, patch: MailshotUpdate) -> Mailshot:
    ms = get(session, mailshot_id)
    sent = patch.model_dump(exclude_unset=True)
    apply_update(ms, patch)
    _check(session, ms, sent, creating=False)
    if "template_id" in sent:
        _copy_template(session, ms)
    session.commit()
    return ms


def delete(session: Session, mailshot_id: int) -> None:
    """Delete the mailshot; its sync jobs (and their units and snapshots) cascade."""
    get(session, mailshot_id)
    session.execute(sql_delete(Mailshot).where(Mailshot.id == mailshot_id))
    session.commit()


def list_page(
    session: Session,
    *,
    cursor: str | None,
    limit: int,
    name: str | None = None,
    q: str | None = None,
    sync_state: str | None = None,
) -> tuple[list[Mailshot], str | None]:
    query = select(Mailshot).options(selectinload(Mailshot.send))
    if name is not None:
        query = query.where(Mailshot.name == name)
    if q:
        query = query.where(Mailshot.name.ilike(contains_pattern(q), escape="\\"))
    if sync_state is not None:
        query = query.where(Mailshot.sync_state == sync_state)
    return keyset_page(session, query, Mailshot.id, cursor=cursor, limit=limit)
