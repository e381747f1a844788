"""Integrated Campaigns: what the ESP accepts (its limits), checking a campaign against
them, the upsert keyed by the CRM mailshot id, and reading campaigns.

The upsert is one ``INSERT ... ON CONFLICT (crm_mailshot_id) DO UPDATE ... WHERE`` the
stored snapshot is not newer and the campaign belongs to the same CRM mailshot (its uid):
two PUTs of the same mailshot at once can never create two campaigns, an older snapshot can
never overwrite a newer one, and a campaign is never handed to another mailshot that has
the same id.
"""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from mailshot.contracts.campaign import CAMPAIGN_FIELDS, IntegratedCampaignPut
from mailshot.contracts.limits import CampaignLimits, Limits, RecipientLimits
from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import get_or_404, upsert
from mailshot.core.errors import AppError, FieldProblem
from mailshot.core.web.paging import keyset_page
from mailshot.esp import errors
from mailshot.esp.models import Campaign
from mailshot.esp.models.campaigns import (
    ADDRESS_MAX,
    CAMPAIGN_NAME_MAX,
    FROM_NAME_MAX,
    SUBJECT_MAX,
    CampaignStatus,
)
from mailshot.esp.services.common import address_problem
from mailshot.esp.services.integration import ensure_not_paused

#: The most recipient rows one request may carry.
MAX_ROWS_PER_REQUEST = 50_000
REQUIRED_FIELDS = ["name", "subject", "from_name", "from_address", "content"]


def limits() -> Limits:
    return Limits(
        campaign=CampaignLimits(
            name_max_length=CAMPAIGN_NAME_MAX,
            subject_max_length=SUBJECT_MAX,
            from_name_max_length=FROM_NAME_MAX,
            from_address_max_length=ADDRESS_MAX,
            required=list(REQUIRED_FIELDS),
        ),
        recipients=RecipientLimits(max_rows_per_request=MAX_ROWS_PER_REQUEST),
    )


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def campaign_problems(data: IntegratedCampaignPut) -> list[tuple[str, AppError]]:
    """Every reason the ESP refuses this campaign, with the field it concerns (pure)."""
    out: list[tuple[str, AppError]] = []
    name, subject = _clean(data.name), _clean(data.subject)
    from_name, from_address = _clean(data.from_name), _clean(data.from_address)
    reply_to = _clean(data.reply_to)
    if name is None:
        out.append(("name", AppError(errors.CAMPAIGN_NAME_MISSING)))
    elif len(name) > CAMPAIGN_NAME_MAX:
        err = AppError(
            errors.CAMPAIGN_NAME_TOO_LONG, length=len(name), max_length=CAMPAIGN_NAME_MAX
        )
        out.append(("name", err))
    if subject is None:
        out.append(("subject", AppError(errors.CAMPAIGN_SUBJECT_MISSING)))
    for field, label, value in (
        ("from_name", "from name", from_name),
        ("from_address", "from address", from_address),
    ):
        if value is None:
            out.append((field, AppError(errors.CAMPAIGN_SENDER_MISSING, what=label)))
    for field, label, value, limit in (
        ("subject", "subject", subject, SUBJECT_MAX),
        ("from_name", "from name", from_name, FROM_NAME_MAX),
        ("from_address", "from address", from_address, ADDRESS_MAX),
        ("reply_to", "reply-to address", reply_to, ADDRESS_MAX),
    ):
        if value is not None and len(value) > limit:
            err = AppError(
                errors.CAMPAIGN_FIELD_TOO_LONG, field=label, length=len(value), max_length=limit
            )
            out.append((field, err))
    for field, value, spec in (
        ("from_address", from_address, errors.CAMPAIGN_FROM_ADDRESS_INVALID),
        ("reply_to", reply_to, errors.CAMPAIGN_REPLY_TO_INVALID),
    ):
        if value is not None and len(value) <= ADDRESS_MAX:
            problem = address_problem(value)
            if problem:
                out.append((field, AppError(spec, address=value, reason=problem)))
    if not (data.html and data.html.strip()) and not (data.text and data.text.strip()):
        out.append(("content", AppError(errors.CAMPAIGN_CONTENT_MISSING)))
    if data.start_date and data.end_date and data.end_date < data.start_date:
        err = AppError(
            errors.CAMPAIGN_DATES_INVALID,
            start_date=data.start_date.isoformat(),
            end_date=data.end_date.isoformat(),
        )
        out.append(("end_date", err))
    return out


def check_campaign(data: IntegratedCampaignPut) -> None:
    """Raise the first problem's error, listing every problem in its details."""
    problems = campaign_problems(data)
    if problems:
        first = problems[0][1]
        first.details = [
            FieldProblem(field=field, rule=err.code, message=err.message) for field, err in problems
        ]
        raise first


def upsert_integrated(
    session: Session, crm_mailshot_id: int, data: IntegratedCampaignPut
) -> Campaign:
    """Create or update the campaign of a CRM mailshot for ``data.snapshot``.

    A campaign made by a mailshot with another uid is refused
    (``CAMPAIGN_OF_ANOTHER_MAILSHOT``), and so is a snapshot older than the campaign's
    current one (``STALE_SNAPSHOT``); otherwise the campaign takes this snapshot and is
    ``receiving`` (unless this very snapshot is already finalised: sending the same PUT
    again changes no state).
    """
    ensure_not_paused(session)
    check_campaign(data)
    now = utcnow()
    values = {
        "crm_mailshot_id": crm_mailshot_id,
        "crm_mailshot_uid": data.crm_mailshot_uid,
        "name": _clean(data.name),
        "campaign_type": data.campaign_type or "integrated",
        "subject": _clean(data.subject),
        "from_name": _clean(data.from_name),
        "from_address": _clean(data.from_address),
        "reply_to": _clean(data.reply_to),
        "html": data.html,
        "text": data.text,
        "start_date": data.start_date,
        "end_date": data.end_date,
        "status": CampaignStatus.RECEIVING,
        "current_snapshot": data.snapshot,
        "audience_needs_prune": False,
        "audience_count": 0,
        "suppressed_count": 0,
        "duplicate_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    stmt = upsert(session, Campaign).values(**values)
    new = stmt.excluded
    content = {
        k: getattr(new, k)
        for k in (*CAMPAIGN_FIELDS, "campaign_type", "start_date", "end_date", "updated_at")
    }
    same_finalised = Campaign.finalised_snapshot == new.current_snapshot
    snapshot_changes = Campaign.current_snapshot.is_not(None) & (
        Campaign.current_snapshot != new.current_snapshot
    )
    returning = stmt.on_conflict_do_update(
        index_elements=["crm_mailshot_id"],
        set_={
            **content,
            "current_snapshot": new.current_snapshot,
            "status": case((same_finalised, Campaign.status), else_=CampaignStatus.RECEIVING),
            "audience_needs_prune": case(
                (snapshot_changes, True), else_=Campaign.audience_needs_prune
            ),
        },
        where=(Campaign.crm_mailshot_uid == new.crm_mailshot_uid)
        & (
            Campaign.current_snapshot.is_(None)
            | (Campaign.current_snapshot <= new.current_snapshot)
        ),
    ).returning(Campaign)
    campaign = session.scalars(
        returning, execution_options={"populate_existing": True}
    ).one_or_none()
    if campaign is None:
        theirs = session.execute(
            select(Campaign.id, Campaign.crm_mailshot_uid, Campaign.current_snapshot).where(
                Campaign.crm_mailshot_id == crm_mailshot_id
            )
        ).one()
        session.rollback()
        if theirs.crm_mailshot_uid != data.crm_mailshot_uid:
            raise AppError(
                errors.CAMPAIGN_OF_ANOTHER_MAILSHOT,
                crm_mailshot_id=crm_mailshot_id,
                crm_mailshot_uid=str(data.crm_mailshot_uid),
                campaign_uid=str(theirs.crm_mailshot_uid),
                campaign_id=theirs.id,
            )
        current = theirs.current_snapshot
        raise AppError(
            errors.STALE_SNAPSHOT,
            snapshot=data.snapshot,
            crm_mailshot_id=crm_mailshot_id,
            current_snapshot=current,
        )
    session.commit()
    return campaign


def get(session: Session, campaign_id: int) -> Campaign:
    return get_or_404(session, Campaign, campaign_id, "campaign")


def get_integrated(session: Session, crm_mailshot_id: int) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.crm_mailshot_id == crm_mailshot_id))
    if campaign is None:
        raise AppError(errors.CAMPAIGN_NOT_FOUND, crm_mailshot_id=crm_mailshot_id)
    return campaign


def list_page(
    session: Session,
    *,
    cursor: str | None,
    limit: int,
    status: str | None = None,
    crm_mailshot_id: int | None = None,
) -> tuple[list[Campaign], str | None]:
    query = select(Campaign)
    if status:
        query = query.where(Campaign.status == status)
    if crm_mailshot_id is not None:
        query = query.where(Campaign.crm_mailshot_id == crm_mailshot_id)
    return keyset_page(session, query, Campaign.id, cursor=cursor, limit=limit)
