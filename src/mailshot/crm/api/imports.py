"""Routes of imports of People from CSV (``/imports/people``, ``/imports/{id}``): the upload
is streamed to a file in the data folder (at most ``max_upload_bytes``: larger ones are
refused with 413), checked (header, mapping, list), recorded as a run, and applied after
the answer (202); follow it with ``GET /imports/{id}``."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, status
from sqlalchemy import select

from mailshot.core.access.auth import Principal
from mailshot.core.errors import FieldProblem, validation_error
from mailshot.core.private_files import open_private, private_folder
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, SessionsDep, SettingsDep, scoped
from mailshot.crm.models import ImportRejection
from mailshot.crm.schemas.imports import ImportRejectionPublic, ImportRunPublic
from mailshot.crm.services import people_import as service

router = APIRouter(prefix="/imports", tags=["imports"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read imports"))]
Writer = Annotated[Principal, Depends(scoped(scopes.MARKETING_WRITE, "import people"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _folder(data_dir: Path) -> Path:
    return private_folder(data_dir / "imports")


def stored_file(data_dir: Path, file_hash: str) -> Path:
    """Where the uploaded file of a run is kept until the run completes."""
    return _folder(data_dir) / f"{file_hash}.csv"


def _mapping(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip():
            raise validation_error(
                [FieldProblem("map", "format", f"'{pair}' is not of the form column=field")]
            )
        out[column.strip()] = target.strip()
    return out


def _public(session: SessionDep, run_id: int) -> ImportRunPublic:
    run = service.get(session, run_id)
    out = ImportRunPublic.model_validate(run)
    out.rejected_by_reason = service.rejected_by_reason(session, run_id)
    return out


def _run_in_background(sessions: SessionsDep, run_id: int, path: Path) -> None:
    with sessions() as session:
        service.run(session, run_id, path)
    path.unlink(missing_ok=True)


@router.post(
    "/people",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_people(
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    who: Writer,
    tasks: BackgroundTasks,
    map: Annotated[
        list[str] | None, Query(description="column=field, e.g. 'E-mail=email' (repeatable).")
    ] = None,
    list_id: Annotated[Id | None, Query(description="Also add the people to this list.")] = None,
    file_name: Annotated[str, Query(max_length=500)] = "upload.csv",
) -> ImportRunPublic:
    """Import People from the CSV file sent as the request body (UTF-8, a header line).
    Rows are matched to people by email address (the lowest id when several share it);
    rejected rows are listed at ``GET /imports/{id}/rejections``."""
    mapping = _mapping(map or [])
    partial = _folder(settings.data_dir) / f"upload-{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    try:
        with open_private(partial) as fh:
            async for block in request.stream():
                digest.update(block)
                fh.write(block)
    except BaseException:  # refused as too large (413), or the client went away
        partial.unlink(missing_ok=True)
        raise
    path = stored_file(settings.data_dir, digest.hexdigest())
    partial.replace(path)
    with sessions() as session:
        try:
            run = service.start(
                session,
                path,
                actor=who.actor,
                mapping=mapping,
                list_id=list_id,
                file_name=file_name,
            )
        except Exception:
            path.unlink(missing_ok=True)
            raise
        answer = _public(session, run.id)
    tasks.add_task(_run_in_background, sessions, answer.id, path)
    return answer


@router.get("/{run_id}")
def get_import(session: SessionDep, _: Reader, run_id: Id) -> ImportRunPublic:
    """Where an import stands: its checkpoint and counts."""
    return _public(session, run_id)


@router.post("/{run_id}/resume", status_code=status.HTTP_202_ACCEPTED)
def resume_import(
    session: SessionDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    _: Writer,
    tasks: BackgroundTasks,
    run_id: Id,
) -> ImportRunPublic:
    """Carry on an interrupted import from its checkpoint (its file is kept until then)."""
    run = service.get(session, run_id)
    path = stored_file(settings.data_dir, run.file_hash)
    service.check_resumable(session, run, path)
    tasks.add_task(_run_in_background, sessions, run_id, path)
    return _public(session, run_id)


@router.get("/{run_id}/rejections")
def list_rejections(
    session: SessionDep,
    _: Reader,
    run_id: Id,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    reason: str | None = None,
) -> Page[ImportRejectionPublic]:
    """The lines of the file that were not applied, in line order, and why."""
    service.get(session, run_id)
    r = ImportRejection
    query = select(r).where(r.run_id == run_id)
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(r.line > after)
    if reason:
        query = query.where(r.reason == reason)
    rows = list(session.scalars(query.order_by(r.line).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].line) if len(rows) > limit else None
    items = [ImportRejectionPublic.model_validate(x) for x in rows[:limit]]
    return Page(items=items, next_cursor=next_cursor, limit=limit)
