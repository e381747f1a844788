"""Routes the bridge workers call (scope ``sync:work``): lease a unit, keep it with
heartbeats, prepare a job, read a chunk of recipients, record the people the ESP
suppresses (finalize), complete or fail a unit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.orm import Session, sessionmaker

from mailshot.contracts.campaign import CampaignFieldsAnswer, PrepareAnswer
from mailshot.contracts.suppressed import SuppressedAnswer, SuppressedBody
from mailshot.contracts.units import (
    CompleteBody,
    FailBody,
    HeartbeatAnswer,
    LeaseAnswer,
    LeaseRequest,
    TokenBody,
    UnitOutcomePublic,
    UnitPublic,
)
from mailshot.core.access.auth import Principal
from mailshot.core.db.engine import read_only
from mailshot.core.errors import FieldProblem, validation_error
from mailshot.core.settings import Settings
from mailshot.core.web.responses import JSONBytes
from mailshot.core.web.types import Count, Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, SessionsDep, SettingsDep, scoped
from mailshot.crm.sync import prepare as prep
from mailshot.crm.sync import recipients as chunk_reads
from mailshot.crm.sync import suppressed, work
from mailshot.queue import QueueSignal, long_poll

router = APIRouter(prefix="/sync", tags=["sync (bridge)"])
Worker = Annotated[Principal, Depends(scoped(scopes.SYNC_WORK, "work the sync queue"))]


def _outcome(o: work.UnitOutcome) -> UnitOutcomePublic:
    return UnitOutcomePublic(
        unit_id=o.unit_id, job_id=o.job_id, kind=o.kind, job_state=o.job_state, repeated=o.repeated
    )


@router.post(
    "/lease",
    response_model=LeaseAnswer,
    responses={204: {"description": "No work is due (after waiting, if asked to)."}},
    summary="Lease the next unit of sync work",
)
async def lease(
    request: Request, sessions: SessionsDep, settings: SettingsDep, _: Worker, body: LeaseRequest
) -> LeaseAnswer | Response:
    """Claim the next due unit. With ``wait_seconds``, a request that finds none waits for
    one to be queued (woken by :mod:`mailshot.queue.wakeups`), on the event loop: a
    waiting worker holds no thread."""
    signal: QueueSignal = request.app.state.queue_signal
    unit = await long_poll(signal, lambda: _lease_once(sessions, settings, body), body.wait_seconds)
    if unit is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return LeaseAnswer(unit=unit)


def _lease_once(
    sessions: sessionmaker[Session], settings: Settings, body: LeaseRequest
) -> UnitPublic | None:
    with read_only(sessions) as peek:
        if not work.has_due_unit(peek, small_only=body.small_only):
            return None
    with sessions() as session:
        return work.lease(
            session,
            worker_id=body.worker_id,
            lease_seconds=settings.lease_seconds,
            max_takeovers=settings.max_takeovers,
            small_only=body.small_only,
        )


@router.post("/units/{unit_id}/heartbeat", summary="Extend the lease of a unit")
def heartbeat(
    session: SessionDep, settings: SettingsDep, _: Worker, unit_id: Id, body: TokenBody
) -> HeartbeatAnswer:
    expires = work.heartbeat(
        session, unit_id, body.lease_token, lease_seconds=settings.lease_seconds
    )
    return HeartbeatAnswer(unit_id=unit_id, lease_expires_at=expires)


@router.post("/units/{unit_id}/campaign", summary="The campaign fields of a prepare unit")
def campaign(session: SessionDep, _: Worker, unit_id: Id, body: TokenBody) -> CampaignFieldsAnswer:
    """What the worker sends to the ESP for this job's snapshot, before the snapshot is
    taken (read-only)."""
    return prep.campaign_fields(session, unit_id, body.lease_token)


@router.post("/units/{unit_id}/prepare", summary="Snapshot the audience of a job")
def prepare(
    request: Request, session: SessionDep, _: Worker, unit_id: Id, body: TokenBody
) -> PrepareAnswer:
    """Snapshot the audience of the unit's job, once; its chunks can be leased as it is
    written (the worker has created the ESP campaign from ``.../campaign`` first)."""
    return prep.prepare(
        session, unit_id, body.lease_token, running=request.app.state.running_snapshots
    )


@router.get(
    "/jobs/{job_id}/recipients",
    summary="A range of a job's audience snapshot",
    response_class=JSONBytes,
    responses={200: {"description": '{"columns": [...], "rows": [[...], ...]}'}},
)
def recipients(
    session: SessionDep,
    _: Worker,
    job_id: Id,
    first_seq: Count,
    last_seq: Count,
) -> Response:
    if last_seq < first_seq or last_seq - first_seq >= chunk_reads.MAX_RECIPIENTS_PER_READ:
        raise validation_error(
            [
                FieldProblem(
                    "last_seq",
                    "range",
                    f"last_seq must be from first_seq to first_seq + "
                    f"{chunk_reads.MAX_RECIPIENTS_PER_READ - 1}",
                )
            ]
        )
    body = chunk_reads.read_recipients_json(session, job_id, first_seq, last_seq)
    return Response(content=body, media_type="application/json")


@router.post("/units/{unit_id}/complete", summary="Report a unit done")
def complete(session: SessionDep, _: Worker, unit_id: Id, body: CompleteBody) -> UnitOutcomePublic:
    return _outcome(
        work.complete(
            session,
            unit_id,
            body.lease_token,
            recipients_written=body.recipients_written,
            esp_campaign_id=body.esp_campaign_id,
            result=body.result,
        )
    )


@router.post(
    "/units/{unit_id}/suppressed",
    summary="Record people the ESP will not send to (finalize units)",
    responses={409: {"description": "SYNC_LEASE_LOST or SYNC_JOB_ENDED: nothing recorded."}},
)
def record_suppressed(
    session: SessionDep, _: Worker, unit_id: Id, body: SuppressedBody
) -> SuppressedAnswer:
    """Exclusions of the job with the reason ``suppressed_at_esp``, keyed (job, person):
    sending the same people again records nothing new."""
    done = suppressed.record_suppressed(session, unit_id, body.lease_token, body.people)
    return SuppressedAnswer(unit_id=done.unit_id, job_id=done.job_id, people=done.people)


@router.post("/units/{unit_id}/fail", summary="Report a failed attempt at a unit")
def fail(
    session: SessionDep, settings: SettingsDep, _: Worker, unit_id: Id, body: FailBody
) -> UnitOutcomePublic:
    return _outcome(
        work.fail(
            session,
            unit_id,
            body.lease_token,
            permanent=body.permanent,
            code=body.code,
            message=body.message,
            fix=body.fix,
            retry_after_seconds=body.retry_after_seconds,
            counts_as_attempt=body.counts_as_attempt,
            max_attempts=settings.max_attempts,
        )
    )
