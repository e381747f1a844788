"""Routes of the Marketing Campaigns resource and its members
(``/marketing-campaigns/{id}/members[/{person_id}]``): parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.common import MembersWritten
from mailshot.crm.schemas.marketing_campaigns import (
    CampaignCreate,
    CampaignMemberPublic,
    CampaignMembersAdd,
    CampaignMemberUpdate,
    CampaignPublic,
    CampaignUpdate,
)
from mailshot.crm.services import marketing_campaigns as service

router = APIRouter(prefix="/marketing-campaigns", tags=["marketing-campaigns"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Writer = Annotated[Principal, Depends(scoped(scopes.MARKETING_WRITE, "change marketing data"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
def list_campaigns(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    q: Annotated[str | None, Query(description="Part of the name.")] = None,
) -> Page[CampaignPublic]:
    rows, next_cursor = service.list_page(session, cursor=cursor, limit=limit, q=q)
    return Page(
        items=[CampaignPublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_campaign(session: SessionDep, _: Writer, body: CampaignCreate) -> CampaignPublic:
    return CampaignPublic.model_validate(service.create(session, body))


@router.get("/{campaign_id}")
def get_campaign(session: SessionDep, _: Reader, campaign_id: Id) -> CampaignPublic:
    return CampaignPublic.model_validate(service.get(session, campaign_id))


@router.patch("/{campaign_id}")
def update_campaign(
    session: SessionDep, _: Writer, campaign_id: Id, body: CampaignUpdate
) -> CampaignPublic:
    return CampaignPublic.model_validate(service.update(session, campaign_id, body))


@router.delete("/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_campaign(session: SessionDep, _: Writer, campaign_id: Id) -> None:
    service.delete(session, campaign_id)


@router.get("/{campaign_id}/members")
def list_members(
    session: SessionDep,
    _: Reader,
    campaign_id: Id,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    status: str | None = None,
) -> Page[CampaignMemberPublic]:
    rows, next_cursor = service.members_page(
        session, campaign_id, cursor=cursor, limit=limit, status=status
    )
    return Page(
        items=[CampaignMemberPublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.post("/{campaign_id}/members")
def add_members(
    session: SessionDep, _: Writer, campaign_id: Id, body: CampaignMembersAdd
) -> MembersWritten:
    """Add people to the campaign with a status, or set the status of existing members
    (all or nothing; at most 10,000 ids per request)."""
    return service.add_members(session, campaign_id, body)


@router.patch("/{campaign_id}/members/{person_id}")
def update_member(
    session: SessionDep, _: Writer, campaign_id: Id, person_id: Id, body: CampaignMemberUpdate
) -> CampaignMemberPublic:
    member = service.update_member(session, campaign_id, person_id, body)
    return CampaignMemberPublic.model_validate(member)


@router.delete("/{campaign_id}/members/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(session: SessionDep, _: Writer, campaign_id: Id, person_id: Id) -> None:
    service.remove_member(session, campaign_id, person_id)
