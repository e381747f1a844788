"""Routes of the integration page: read it, heartbeat a bridge worker, pause and resume."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mailshot.contracts.heartbeats import HeartbeatIn, HeartbeatOut, IntegrationPage
from mailshot.core.access.auth import Principal
from mailshot.esp import scopes
from mailshot.esp.api.deps import SessionDep, scoped
from mailshot.esp.services import integration as service

router = APIRouter(prefix="/integration", tags=["integration"])
Reader = Annotated[Principal, Depends(scoped(scopes.CAMPAIGNS_READ, "read the integration page"))]
Worker = Annotated[Principal, Depends(scoped(scopes.INTEGRATION, "report as the integration"))]
Admin = Annotated[Principal, Depends(scoped(scopes.ADMIN, "pause or resume the integration"))]


@router.get("")
def get_integration(session: SessionDep, _: Reader) -> IntegrationPage:
    """Tools > Integration > General: running (not paused, and a worker heard from within
    60 s), paused, last seen, last error, and the workers."""
    return service.page(session)


@router.post("/heartbeat")
def heartbeat(session: SessionDep, _: Worker, body: HeartbeatIn) -> HeartbeatOut:
    """A bridge worker is alive; the answer says whether it must wait (paused)."""
    return service.heartbeat(session, body)


@router.post("/pause")
def pause(session: SessionDep, who: Admin) -> IntegrationPage:
    """Pause the integration: its writes answer 503 INTEGRATION_PAUSED until resumed."""
    return service.set_paused(session, paused=True, actor=who.actor)


@router.post("/resume")
def resume(session: SessionDep, _: Admin) -> IntegrationPage:
    return service.set_paused(session, paused=False, actor="")
