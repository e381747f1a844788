"""Routes of suppressions and bounces: parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.esp import scopes
from mailshot.esp.api.deps import SessionDep, scoped
from mailshot.esp.schemas.suppressions import BounceCreate, SuppressionCreate, SuppressionPublic
from mailshot.esp.services import suppressions as service

router = APIRouter(tags=["suppressions"])
Reader = Annotated[Principal, Depends(scoped(scopes.CAMPAIGNS_READ, "read suppressions"))]
Writer = Annotated[Principal, Depends(scoped(scopes.CAMPAIGNS_WRITE, "change suppressions"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/suppressions")
def list_suppressions(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    email: str | None = None,
    reason: Literal["unsubscribed", "bounced"] | None = None,
) -> Page[SuppressionPublic]:
    """Suppressions and bounce records; ``suppressed`` says whether mail is stopped."""
    rows, next_cursor = service.list_page(
        session, cursor=cursor, limit=limit, email=email, reason=reason
    )
    return Page(items=[service.public(r) for r in rows], next_cursor=next_cursor, limit=limit)


@router.post("/suppressions", status_code=status.HTTP_201_CREATED)
def create_suppression(
    session: SessionDep, _: Writer, body: SuppressionCreate
) -> SuppressionPublic:
    """Suppress an address (or set its bounce counts). Bounce-limited at one hard bounce
    or three soft ones; ``bounced`` without counts means one hard bounce."""
    return service.public(service.suppress(session, body))


@router.delete("/suppressions/{email}", status_code=status.HTTP_204_NO_CONTENT)
def delete_suppression(session: SessionDep, _: Writer, email: str) -> None:
    """Lift the suppression (and forget the bounces) of an address."""
    service.remove(session, email)


@router.post("/bounces")
def record_bounce(session: SessionDep, _: Writer, body: BounceCreate) -> SuppressionPublic:
    """Count one bounce; the address is suppressed at the limit."""
    return service.public(service.bounce(session, body))
