"""Routes of contacts: parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.esp import scopes
from mailshot.esp.api.deps import SessionDep, scoped
from mailshot.esp.schemas.contacts import ContactCreate, ContactPublic
from mailshot.esp.services import contacts as service

router = APIRouter(prefix="/contacts", tags=["contacts"])
Reader = Annotated[Principal, Depends(scoped(scopes.CAMPAIGNS_READ, "read contacts"))]
Writer = Annotated[Principal, Depends(scoped(scopes.CAMPAIGNS_WRITE, "change contacts"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
def list_contacts(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    email: str | None = None,
) -> Page[ContactPublic]:
    """Contacts in id order; ``email`` finds the one with that (normalised) address."""
    rows, next_cursor = service.list_page(session, cursor=cursor, limit=limit, email=email)
    return Page(
        items=[ContactPublic.model_validate(r) for r in rows], next_cursor=next_cursor, limit=limit
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "An existing contact with that address was updated."}},
)
def upsert_contact(
    session: SessionDep, _: Writer, body: ContactCreate, response: Response
) -> ContactPublic:
    """Create a contact (201), or update the one with the same normalised address (200)."""
    contact, created = service.upsert_contact(session, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return ContactPublic.model_validate(contact)


@router.get("/{contact_id}")
def get_contact(session: SessionDep, _: Reader, contact_id: Id) -> ContactPublic:
    return ContactPublic.model_validate(service.get(session, contact_id))


@router.delete("/{contact_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_contact(session: SessionDep, _: Writer, contact_id: Id) -> None:
    """Delete a contact; it leaves every campaign audience it was in."""
    service.delete(session, contact_id)
