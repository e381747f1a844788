"""Routes of the ESP's limits as the CRM keeps them (``PUT`` by the bridge, scope
``sync:work``; ``GET`` for people) and of a mailshot's preflight (the checks Synchronise
makes, without queueing anything)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mailshot.contracts.limits import EspLimitsPut
from mailshot.core.access.auth import Principal
from mailshot.core.db.sqlhelpers import get_or_404
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.models import Mailshot
from mailshot.crm.schemas.esp_limits import EspLimitsPublic, PreflightPublic, ProblemPublic
from mailshot.crm.services import esp_limits as service
from mailshot.crm.sync import preflight

router = APIRouter(tags=["sync"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read the ESP's limits"))]
Worker = Annotated[Principal, Depends(scoped(scopes.SYNC_WORK, "report the ESP's limits"))]


def _public(stored: service.StoredLimits | None) -> EspLimitsPublic:
    if stored is None:
        return EspLimitsPublic(known=False)
    return EspLimitsPublic(
        known=True,
        limits=stored.limits,
        read_at=stored.read_at,
        received_at=stored.received_at,
        reported_by=stored.reported_by,
        name_max_length=stored.campaign.name_max_length,
    )


@router.get("/integration/esp-limits", summary="The ESP's limits, as the CRM last received them")
def get_esp_limits(session: SessionDep, _: Reader) -> EspLimitsPublic:
    return _public(service.load(session))


@router.put("/integration/esp-limits", summary="The bridge reports the ESP's limits")
def put_esp_limits(session: SessionDep, who: Worker, body: EspLimitsPut) -> EspLimitsPublic:
    return _public(service.store(session, body.limits, read_at=body.read_at, reported_by=who.actor))


@router.get(
    "/mailshots/{mailshot_id}/preflight",
    summary="What Synchronise would refuse, without queueing",
)
def mailshot_preflight(session: SessionDep, _: Reader, mailshot_id: Id) -> PreflightPublic:
    mailshot = get_or_404(session, Mailshot, mailshot_id, "mailshot")
    result = preflight.run(session, mailshot)
    return PreflightPublic(
        mailshot_id=mailshot.id,
        ok=result.ok,
        problems=[ProblemPublic.of(p) for p in result.problems],
        warnings=result.warnings,
        limits_read_at=result.limits_read_at,
    )
