"""Routes of the Organisations resource: parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.organisations import (
    OrganisationCreate,
    OrganisationPublic,
    OrganisationUpdate,
)
from mailshot.crm.services import organisations as service

router = APIRouter(prefix="/organisations", tags=["organisations"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Writer = Annotated[Principal, Depends(scoped(scopes.MARKETING_WRITE, "change marketing data"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
def list_organisations(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    name: str | None = None,
) -> Page[OrganisationPublic]:
    rows, next_cursor = service.list_page(session, cursor=cursor, limit=limit, name=name)
    return Page(
        items=[OrganisationPublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_organisation(
    session: SessionDep, _: Writer, body: OrganisationCreate
) -> OrganisationPublic:
    return OrganisationPublic.model_validate(service.create(session, body))


@router.get("/{org_id}")
def get_organisation(session: SessionDep, _: Reader, org_id: Id) -> OrganisationPublic:
    return OrganisationPublic.model_validate(service.get(session, org_id))


@router.patch("/{org_id}")
def update_organisation(
    session: SessionDep, _: Writer, org_id: Id, body: OrganisationUpdate
) -> OrganisationPublic:
    return OrganisationPublic.model_validate(service.update(session, org_id, body))


@router.delete("/{org_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_organisation(session: SessionDep, _: Writer, org_id: Id) -> None:
    service.delete(session, org_id)
