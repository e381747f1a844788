"""Routes of the Mailshots resource and its audience recount: parse, authorise, call the
service. The sync routes (``/mailshots/{id}/synchronise`` ...) live in ``crm/sync/api.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.mailshots import (
    AudiencePublic,
    MailshotCreate,
    MailshotPublic,
    MailshotUpdate,
)
from mailshot.crm.services import audience
from mailshot.crm.services import mailshots as service

router = APIRouter(prefix="/mailshots", tags=["mailshots"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Writer = Annotated[Principal, Depends(scoped(scopes.MARKETING_WRITE, "change marketing data"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
def list_mailshots(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    name: Annotated[str | None, Query(description="The exact name.")] = None,
    q: Annotated[str | None, Query(description="Part of the name.")] = None,
    sync_state: str | None = None,
) -> Page[MailshotPublic]:
    rows, next_cursor = service.list_page(
        session, cursor=cursor, limit=limit, name=name, q=q, sync_state=sync_state
    )
    return Page(
        items=[MailshotPublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_mailshot(session: SessionDep, _: Writer, body: MailshotCreate) -> MailshotPublic:
    return MailshotPublic.model_validate(service.create(session, body))


@router.get("/{mailshot_id}")
def get_mailshot(session: SessionDep, _: Reader, mailshot_id: Id) -> MailshotPublic:
    return MailshotPublic.model_validate(service.get(session, mailshot_id))


@router.patch("/{mailshot_id}")
def update_mailshot(
    session: SessionDep, _: Writer, mailshot_id: Id, body: MailshotUpdate
) -> MailshotPublic:
    return MailshotPublic.model_validate(service.update(session, mailshot_id, body))


@router.delete("/{mailshot_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_mailshot(session: SessionDep, _: Writer, mailshot_id: Id) -> None:
    """Delete the mailshot and its sync history (the ESP campaign is not touched)."""
    service.delete(session, mailshot_id)


@router.post("/{mailshot_id}/recount")
def recount_audience(session: SessionDep, _: Reader, mailshot_id: Id) -> AudiencePublic:
    """Count the audience now by the rules a sync applies, writing nothing."""
    counts = audience.recount(session, service.get(session, mailshot_id))
    return AudiencePublic(
        included=counts.included, excluded=counts.excluded, total_source=counts.total_source
    )
