"""The sync buttons of a mailshot (Synchronise, Cancel, Retry), its live progress as JSON
for the page's poll, and the queue page. Everything goes through the sync queue's own
services (:mod:`mailshot.crm.sync.queue`, :mod:`mailshot.crm.sync.progress`)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.core.web.paging import keyset_page
from mailshot.core.web.responses import JSONBytes
from mailshot.core.webui.auth import UserDep, page_router
from mailshot.core.webui.pages import DbDep, flash, render
from mailshot.core.webui.paging import pager
from mailshot.crm.models import SyncExclusion
from mailshot.crm.sync import progress, queue
from mailshot.crm.ui.common import PAGE_SIZE, REASON_LABELS

router = page_router()
#: The queue page shows at most this many active syncs.
QUEUE_SHOWN = 200


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _queue_action(
    request: Request, db: Session, mailshot_id: int, action: Callable[[], object], done: str
) -> Response:
    """Run one sync-queue action and go back to the mailshot, saying ``done`` or why the
    queue refused it; an unknown mailshot is a 404 page."""
    try:
        action()
    except AppError as exc:
        if exc.status == 404:
            raise
        db.rollback()
        detail = "; ".join(d.message for d in exc.details)
        text = exc.message if not detail or detail in exc.message else f"{exc.message} ({detail})"
        flash(request, f"{exc.code}: {text} {exc.fix}".strip(), "bad")
    else:
        flash(request, done, "info")
    return RedirectResponse(request.url_for("mailshot", mailshot_id=mailshot_id), 303)


@router.post("/mailshots/{mailshot_id}/synchronise", name="mailshot_synchronise")
def synchronise(request: Request, db: DbDep, user: UserDep, mailshot_id: int) -> Response:
    chunk_size = _settings(request).chunk_size
    return _queue_action(
        request,
        db,
        mailshot_id,
        lambda: queue.request_sync(db, mailshot_id, chunk_size=chunk_size, actor=user.actor),
        "Synchronise requested: the mailshot is in the sync queue.",
    )


@router.post("/mailshots/{mailshot_id}/cancel", name="mailshot_cancel")
def cancel(request: Request, db: DbDep, _: UserDep, mailshot_id: int) -> Response:
    return _queue_action(
        request, db, mailshot_id, lambda: queue.cancel(db, mailshot_id), "The sync was cancelled."
    )


@router.post("/mailshots/{mailshot_id}/retry", name="mailshot_retry")
def retry(request: Request, db: DbDep, user: UserDep, mailshot_id: int) -> Response:
    chunk_size = _settings(request).chunk_size
    return _queue_action(
        request,
        db,
        mailshot_id,
        lambda: queue.retry(db, mailshot_id, chunk_size=chunk_size, actor=user.actor),
        "Retry requested: the mailshot is back in the sync queue.",
    )


@router.get("/mailshots/{mailshot_id}/progress.json", name="mailshot_progress")
def progress_json(db: DbDep, _: UserDep, mailshot_id: int) -> Response:
    """The same answer as ``GET /crm/api/v1/mailshots/{id}/sync``, for a signed-in browser."""
    data = progress.mailshot_status(db, mailshot_id)
    return JSONBytes(data.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.get("/sync/queue", name="crm_sync_queue")
def queue_page(request: Request, db: DbDep, _: UserDep) -> Response:
    answer = progress.queue(db, limit=QUEUE_SHOWN)
    return render(
        request,
        "crm/sync_queue.html",
        {
            "title": "Sync queue",
            "active": "sync_queue",
            "entries": answer.items,
            "total": answer.total,
        },
    )


@router.get("/sync/jobs/{job_id}/exclusions", name="crm_sync_exclusions")
def exclusions_page(
    request: Request,
    db: DbDep,
    _: UserDep,
    job_id: int,
    cursor: str | None = None,
    reason: str | None = None,
) -> Response:
    job = progress.job_detail(db, job_id)  # 404 for an unknown job
    query = select(SyncExclusion).where(SyncExclusion.job_id == job_id)
    if reason:
        query = query.where(SyncExclusion.reason == reason)
    rows, next_cursor = keyset_page(
        db, query, SyncExclusion.person_id, cursor=cursor, limit=PAGE_SIZE
    )
    return render(
        request,
        "crm/sync_exclusions.html",
        {
            "title": f"Left out of sync {job_id}",
            "active": "mailshots",
            "job": job,
            "rows": rows,
            "reason": reason or "",
            "reason_labels": REASON_LABELS,
        }
        | pager(request, next_cursor),
    )
