"""Routes of the Templates resource: parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.templates import TemplateCreate, TemplatePublic, TemplateUpdate
from mailshot.crm.services import templates as service

router = APIRouter(prefix="/templates", tags=["templates"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Writer = Annotated[Principal, Depends(scoped(scopes.MARKETING_WRITE, "change marketing data"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
def list_templates(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    q: Annotated[str | None, Query(description="Part of the name.")] = None,
) -> Page[TemplatePublic]:
    rows, next_cursor = service.list_page(session, cursor=cursor, limit=limit, q=q)
    return Page(
        items=[TemplatePublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_template(session: SessionDep, _: Writer, body: TemplateCreate) -> TemplatePublic:
    return TemplatePublic.model_validate(service.create(session, body))


@router.get("/{template_id}")
def get_template(session: SessionDep, _: Reader, template_id: Id) -> TemplatePublic:
    return TemplatePublic.model_validate(service.get(session, template_id))


@router.patch("/{template_id}")
def update_template(
    session: SessionDep, _: Writer, template_id: Id, body: TemplateUpdate
) -> TemplatePublic:
    return TemplatePublic.model_validate(service.update(session, template_id, body))


@router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_template(session: SessionDep, _: Writer, template_id: Id) -> None:
    service.delete(session, template_id)
