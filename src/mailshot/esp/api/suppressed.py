"""Route of an integrated campaign's suppressed audience members (what the bridge relays
to the CRM as ``suppressed_at_esp`` exclusions): parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from mailshot.contracts.suppressed import MAX_SUPPRESSED_PAGE, SuppressedPage
from mailshot.core.access.auth import Principal
from mailshot.core.web.types import Count, Id
from mailshot.esp import scopes
from mailshot.esp.api.deps import SessionDep, scoped
from mailshot.esp.services import suppressed as service

router = APIRouter(tags=["campaigns"])
Reader = Annotated[Principal, Depends(scoped(scopes.CAMPAIGNS_READ, "read campaigns"))]


@router.get(
    "/integrated-campaigns/{crm_mailshot_id}/suppressed",
    responses={404: {"description": "CAMPAIGN_NOT_FOUND"}},
)
def list_suppressed(
    session: SessionDep,
    _: Reader,
    crm_mailshot_id: Id,
    snapshot: Count | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SUPPRESSED_PAGE)] = 1000,
) -> SuppressedPage:
    """Members of the snapshot's audience (default: the finalised one) whose address the
    ESP will not send to: ``crm_person_id``, ``email``, ``reason`` ('unsubscribed' or
    'bounced'), in CRM person id order. The count matches finalize's ``suppressed_count``."""
    return service.suppressed_page(
        session, crm_mailshot_id, snapshot=snapshot, cursor=cursor, limit=limit
    )
