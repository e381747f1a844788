"""Route the bridge calls to run the refresh scheduler (:mod:`mailshot.crm.sync.refresh`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mailshot.contracts.units import RefreshAnswer, RefreshedPublic
from mailshot.core.access.auth import Principal
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, SettingsDep, scoped
from mailshot.crm.sync import refresh

router = APIRouter(tags=["sync (bridge)"])
Worker = Annotated[Principal, Depends(scoped(scopes.SYNC_WORK, "work the sync queue"))]


@router.post("/sync/refresh", summary="Queue the refreshes of recurring mailshots now due")
def run_refresh(session: SessionDep, settings: SettingsDep, _: Worker) -> RefreshAnswer:
    done = refresh.tick(session, chunk_size=settings.chunk_size)
    return RefreshAnswer(
        queued=[RefreshedPublic(mailshot_id=r.mailshot_id, job_id=r.job_id) for r in done]
    )
