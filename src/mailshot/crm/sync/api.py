"""Routes of the sync queue for people: Synchronise, progress, cancel, retry, the queue,
one job, its exclusions and the integration's health. The bridge's routes (lease,
heartbeat, prepare, recipients, complete, fail) are in :mod:`mailshot.crm.sync.api_work`
and included here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from mailshot.contracts.heartbeats import WorkerHeartbeat
from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, keyset_page
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, SettingsDep, scoped
from mailshot.crm.models import SyncExclusion
from mailshot.crm.sync import api_work, integration, progress, queue
from mailshot.crm.sync.schemas import (
    ExclusionPublic,
    IntegrationPublic,
    QueuePublic,
    SyncJobPublic,
    SyncStatus,
)

router = APIRouter(tags=["sync"])
router.include_router(api_work.router)

Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read sync progress"))]
Requester = Annotated[Principal, Depends(scoped(scopes.SYNC_REQUEST, "request a sync"))]
Worker = Annotated[Principal, Depends(scoped(scopes.SYNC_WORK, "work the sync queue"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post(
    "/mailshots/{mailshot_id}/synchronise",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Synchronise a mailshot to the ESP",
    description="Queues a sync (superseding one already queued or running) and answers at "
    "once, whatever the audience size; follow it with GET /mailshots/{id}/sync.",
)
def synchronise(
    session: SessionDep, settings: SettingsDep, who: Requester, mailshot_id: Id
) -> SyncStatus:
    return queue.synchronise(session, mailshot_id, chunk_size=settings.chunk_size, actor=who.actor)


@router.get("/mailshots/{mailshot_id}/sync", summary="Where a mailshot's sync stands")
def sync_status(session: SessionDep, _: Reader, mailshot_id: Id) -> SyncStatus:
    return progress.mailshot_status(session, mailshot_id)


@router.post("/mailshots/{mailshot_id}/sync/cancel", summary="Cancel a queued or running sync")
def cancel_sync(session: SessionDep, _: Requester, mailshot_id: Id) -> SyncStatus:
    queue.cancel(session, mailshot_id)
    return progress.mailshot_status(session, mailshot_id)


@router.post(
    "/mailshots/{mailshot_id}/sync/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a failed or cancelled sync again",
)
def retry_sync(
    session: SessionDep, settings: SettingsDep, who: Requester, mailshot_id: Id
) -> SyncStatus:
    return queue.synchronise(
        session, mailshot_id, chunk_size=settings.chunk_size, actor=who.actor, retry=True
    )


@router.get("/sync/queue", summary="Active syncs in the order they are served")
def sync_queue(session: SessionDep, _: Reader, limit: Limit = DEFAULT_LIMIT) -> QueuePublic:
    return progress.queue(session, limit=limit)


@router.get("/sync/jobs/{job_id}", summary="One sync job in detail")
def sync_job(session: SessionDep, _: Reader, job_id: Id) -> SyncJobPublic:
    return progress.job_detail(session, job_id)


@router.get(
    "/sync/jobs/{job_id}/exclusions",
    summary="Who was left out of a sync's audience, and why",
)
def sync_exclusions(
    session: SessionDep,
    _: Reader,
    job_id: Id,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    reason: str | None = None,
) -> Page[ExclusionPublic]:
    progress.job_detail(session, job_id)  # 404 for an unknown job
    query = select(SyncExclusion).where(SyncExclusion.job_id == job_id)
    if reason:
        query = query.where(SyncExclusion.reason == reason)
    rows, next_cursor = keyset_page(
        session, query, SyncExclusion.person_id, cursor=cursor, limit=limit
    )
    return Page(
        items=[ExclusionPublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.post(
    "/integration/heartbeat",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="A bridge worker says it is alive",
)
def worker_heartbeat(session: SessionDep, _: Worker, body: WorkerHeartbeat) -> Response:
    integration.record_heartbeat(session, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/integration", summary="The bridge workers the CRM has heard from")
def integration_status(session: SessionDep, _: Reader) -> IntegrationPublic:
    return integration.integration(session)
