"""Routes of the diagnosis: every check of one mailshot, or of the whole integration, each
answered pass, warn or fail with a sentence and the fix (see :mod:`mailshot.crm.diagnosis`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mailshot.core.access.auth import Principal
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.diagnosis import diagnose_integration, diagnose_mailshot
from mailshot.crm.diagnosis.schemas import Diagnosis

router = APIRouter(tags=["diagnosis"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read the diagnosis"))]


@router.get(
    "/mailshots/{mailshot_id}/diagnosis",
    summary="Why a mailshot has (not) arrived in the ESP",
    description="Runs every check (state and queue position with an ETA, name and fields "
    "against the ESP's limits, the integration key, the bridge running, the ESP paused or "
    "reachable, the last error and next retry, the audience and who was left out) and "
    "answers each with pass, warn or fail, a sentence and the fix.",
)
def mailshot_diagnosis(session: SessionDep, _: Reader, mailshot_id: Id) -> Diagnosis:
    return diagnose_mailshot(session, mailshot_id)


@router.get("/diagnosis", summary="Whether the integration is healthy")
def integration_diagnosis(session: SessionDep, _: Reader) -> Diagnosis:
    return diagnose_integration(session)
