"""Routes of the Mailing Lists resource and its members
(``/mailing-lists/{id}/members[/{person_id}]``): parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.common import MembersWritten
from mailshot.crm.schemas.mailing_lists import (
    ListMemberPublic,
    ListMembersAdd,
    ListMemberUpdate,
    MailingListCreate,
    MailingListPublic,
    MailingListUpdate,
)
from mailshot.crm.services import mailing_lists as service

router = APIRouter(prefix="/mailing-lists", tags=["mailing-lists"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Writer = Annotated[Principal, Depends(scoped(scopes.MARKETING_WRITE, "change marketing data"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
def list_mailing_lists(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    q: Annotated[str | None, Query(description="Part of the name.")] = None,
) -> Page[MailingListPublic]:
    rows, next_cursor = service.list_page(session, cursor=cursor, limit=limit, q=q)
    return Page(
        items=[MailingListPublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_mailing_list(
    session: SessionDep, _: Writer, body: MailingListCreate
) -> MailingListPublic:
    return MailingListPublic.model_validate(service.create(session, body))


@router.get("/{list_id}")
def get_mailing_list(session: SessionDep, _: Reader, list_id: Id) -> MailingListPublic:
    return MailingListPublic.model_validate(service.get(session, list_id))


@router.patch("/{list_id}")
def update_mailing_list(
    session: SessionDep, _: Writer, list_id: Id, body: MailingListUpdate
) -> MailingListPublic:
    return MailingListPublic.model_validate(service.update(session, list_id, body))


@router.delete("/{list_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_mailing_list(session: SessionDep, _: Writer, list_id: Id) -> None:
    service.delete(session, list_id)


@router.get("/{list_id}/members")
def list_members(
    session: SessionDep,
    _: Reader,
    list_id: Id,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    subscribed: bool | None = None,
) -> Page[ListMemberPublic]:
    rows, next_cursor = service.members_page(
        session, list_id, cursor=cursor, limit=limit, subscribed=subscribed
    )
    return Page(
        items=[ListMemberPublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.post("/{list_id}/members")
def add_members(
    session: SessionDep, who: Writer, list_id: Id, body: ListMembersAdd
) -> MembersWritten:
    """Add people to the list, or set their subscribed flag if they are members already
    (all or nothing; at most 10,000 ids per request)."""
    return service.add_members(session, list_id, body, actor=who.actor)


@router.patch("/{list_id}/members/{person_id}")
def update_member(
    session: SessionDep, who: Writer, list_id: Id, person_id: Id, body: ListMemberUpdate
) -> ListMemberPublic:
    member = service.update_member(session, list_id, person_id, body, actor=who.actor)
    return ListMemberPublic.model_validate(member)


@router.delete("/{list_id}/members/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(session: SessionDep, who: Writer, list_id: Id, person_id: Id) -> None:
    service.remove_member(session, list_id, person_id, actor=who.actor)
