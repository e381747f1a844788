"""Routes of the People resource, and of their compliance records under
``/people/{id}/compliance-records``: parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.compliance import ComplianceCreate, CompliancePublic
from mailshot.crm.schemas.people import PersonCreate, PersonPublic, PersonUpdate
from mailshot.crm.services import compliance
from mailshot.crm.services import people as service

router = APIRouter(prefix="/people", tags=["people"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Writer = Annotated[Principal, Depends(scoped(scopes.MARKETING_WRITE, "change marketing data"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
def list_people(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    email: Annotated[str | None, Query(description="Exact address (any case).")] = None,
    q: Annotated[str | None, Query(description="Part of a name or an address.")] = None,
    organisation_id: Id | None = None,
) -> Page[PersonPublic]:
    rows, next_cursor = service.list_page(
        session, cursor=cursor, limit=limit, email=email, q=q, organisation_id=organisation_id
    )
    return Page(
        items=[PersonPublic.model_validate(r) for r in rows], next_cursor=next_cursor, limit=limit
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_person(session: SessionDep, who: Writer, body: PersonCreate) -> PersonPublic:
    return PersonPublic.model_validate(service.create(session, body, actor=who.actor))


@router.get("/{person_id}")
def get_person(session: SessionDep, _: Reader, person_id: Id) -> PersonPublic:
    return PersonPublic.model_validate(service.get(session, person_id))


@router.patch("/{person_id}")
def update_person(
    session: SessionDep, who: Writer, person_id: Id, body: PersonUpdate
) -> PersonPublic:
    return PersonPublic.model_validate(service.update(session, person_id, body, actor=who.actor))


@router.delete("/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_person(session: SessionDep, _: Writer, person_id: Id) -> None:
    service.delete(session, person_id)


@router.get("/{person_id}/compliance-records", tags=["compliance"])
def list_compliance_records(
    session: SessionDep,
    _: Reader,
    person_id: Id,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[CompliancePublic]:
    rows, next_cursor = compliance.list_page(session, person_id, cursor=cursor, limit=limit)
    return Page(items=[compliance.public(r) for r in rows], next_cursor=next_cursor, limit=limit)


@router.post(
    "/{person_id}/compliance-records", status_code=status.HTTP_201_CREATED, tags=["compliance"]
)
def create_compliance_record(
    session: SessionDep, who: Writer, person_id: Id, body: ComplianceCreate
) -> CompliancePublic:
    return compliance.public(compliance.create(session, person_id, body, actor=who.actor))
