"""Finalising a campaign's audience snapshot.

Finalize makes a snapshot the campaign's audience: rows of older snapshots are dropped
(only when the snapshot changed since the last finalize, so a first sync never scans for
them), ``received = audience + duplicates`` must equal the CRM's ``expected`` (else 409
``AUDIENCE_COUNT_MISMATCH`` and nothing changes), suppressed addresses are counted, and
the campaign becomes ``ready``. Finalising the same snapshot again gives the same answer.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, func, literal, select, update
from sqlalchemy.orm import Session

from mailshot.contracts.campaign import FinalizeRequest, FinalizeResult
from mailshot.core.clock import utcnow
from mailshot.core.errors import AppError
from mailshot.esp import errors
from mailshot.esp.models import Campaign, CampaignDuplicate, CampaignRecipient, Suppression
from mailshot.esp.models.campaigns import CampaignStatus, suppressed_clause
from mailshot.esp.services.audience import (
    CONTACTS,
    RECIPIENTS,
    campaign_for_write,
    check_snapshot,
)
from mailshot.esp.services.integration import ensure_not_paused


def _suppressed_count(
    session: Session, campaign_id: int, snapshot: int, audience_count: int
) -> int:
    """Audience contacts whose address is suppressed, driven from the smaller side."""
    in_audience = and_(
        RECIPIENTS.c.campaign_id == campaign_id,
        RECIPIENTS.c.snapshot == snapshot,
        RECIPIENTS.c.contact_id == CONTACTS.c.id,
    )
    suppressions = session.scalar(select(func.count()).select_from(Suppression)) or 0
    if suppressions == 0 or audience_count == 0:
        return 0
    if suppressions <= audience_count:
        exists = (
            select(literal(1))
            .select_from(CONTACTS.join(RECIPIENTS, in_audience))
            .where(CONTACTS.c.email_normalised == Suppression.email_normalised)
            .exists()
        )
        query = select(func.count()).select_from(Suppression).where(suppressed_clause(), exists)
    else:
        query = (
            select(func.count())
            .select_from(RECIPIENTS)
            .join(CONTACTS, in_audience)
            .join(Suppression, Suppression.email_normalised == CONTACTS.c.email_normalised)
            .where(suppressed_clause())
        )
    return int(session.scalar(query) or 0)


def finalize(session: Session, crm_mailshot_id: int, req: FinalizeRequest) -> FinalizeResult:
    """Make ``req.snapshot`` the campaign's audience: drop rows of other snapshots, check
    that the ESP received ``expected`` rows, count suppressed addresses and duplicates, and
    mark the campaign ready. Idempotent; on a mismatch nothing changes."""
    ensure_not_paused(session)
    campaign = campaign_for_write(session, crm_mailshot_id, exclusive=True)
    check_snapshot(crm_mailshot_id, req.snapshot, campaign.current_snapshot)
    campaign_id, snapshot = campaign.id, req.snapshot
    if campaign.audience_needs_prune:
        session.execute(
            delete(CampaignRecipient).where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.snapshot != snapshot,
            )
        )
    session.execute(
        delete(CampaignDuplicate).where(
            CampaignDuplicate.campaign_id == campaign_id, CampaignDuplicate.snapshot != snapshot
        )
    )
    audience = int(
        session.scalar(
            select(func.count())
            .select_from(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign_id)
        )
        or 0
    )
    duplicates = int(
        session.scalar(
            select(func.count())
            .select_from(CampaignDuplicate)
            .where(CampaignDuplicate.campaign_id == campaign_id)
        )
        or 0
    )
    received = audience + duplicates
    if received != req.expected:
        raise AppError(
            errors.AUDIENCE_COUNT_MISMATCH,
            received=received,
            expected=req.expected,
            audience=audience,
            duplicates=duplicates,
            snapshot=snapshot,
            crm_mailshot_id=crm_mailshot_id,
        )
    suppressed = _suppressed_count(session, campaign_id, snapshot, audience)
    now = utcnow()
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(
            status=CampaignStatus.READY,
            finalised_snapshot=snapshot,
            audience_needs_prune=False,
            audience_count=audience,
            suppressed_count=suppressed,
            duplicate_count=duplicates,
            finalised_at=now,
            updated_at=now,
        )
    )
    session.commit()
    return FinalizeResult(
        id=campaign_id,
        crm_mailshot_id=crm_mailshot_id,
        snapshot=snapshot,
        status=CampaignStatus.READY,
        received=received,
        audience_count=audience,
        suppressed_count=suppressed,
        duplicate_count=duplicates,
        finalised_at=now,
    )
