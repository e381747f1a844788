"""Route of "is this person in this mailshot's audience, and if not, why?"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mailshot.core.access.auth import Principal
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.membership import MembershipPublic
from mailshot.crm.services import membership as service

router = APIRouter(tags=["mailshots"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]


@router.get("/mailshots/{mailshot_id}/audience/people/{person_id}")
def person_in_audience(
    session: SessionDep, _: Reader, mailshot_id: Id, person_id: Id
) -> MembershipPublic:
    """Whether the person is in the mailshot's audience and, if not, why: from the latest
    sync's snapshot, or from the live rules before any sync."""
    return service.membership(session, mailshot_id, person_id)
