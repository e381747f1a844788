"""Routes of sends: start or schedule a campaign's send, read it with its counts, pause,
resume, cancel, resend the recipients in doubt, list its ledger by state, diagnose it, test
sends, and the feed of sends changed since a cursor (which the bridge relays to the CRM).
Parse, authorise, call :mod:`mailshot.esp.services.sends`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.contracts.sends import (
    CURSOR_MAX,
    FEED_DEFAULT_LIMIT,
    FEED_MAX_LIMIT,
    RecipientState,
    SendFeedPage,
)
from mailshot.core.access.auth import Principal
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import begin_read, db_now
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.esp import scopes
from mailshot.esp.api.deps import SessionDep, SessionsDep, SettingsDep, scoped
from mailshot.esp.diagnosis.sends import diagnose
from mailshot.esp.models import Campaign, Send
from mailshot.esp.schemas.sends import (
    ResendResult,
    SendDiagnosis,
    SendError,
    SendFinding,
    SendPublic,
    SendRecipientPublic,
    SendRequest,
    TestSendItem,
    TestSendRequest,
    TestSendResult,
)
from mailshot.esp.services import sends as service
from mailshot.esp.services import sends_feed
from mailshot.esp.services.sends_test import test_send

router = APIRouter(tags=["sends"])
Reader = Annotated[Principal, Depends(scoped(scopes.SENDS_READ, "read sends"))]
Writer = Annotated[Principal, Depends(scoped(scopes.SENDS_WRITE, "send campaigns"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def view(session: Session, send: Send) -> SendPublic:
    counts = service.counts(send)
    moving = service.progress(send, utcnow())
    done, rate, eta = moving.done, moving.rate_per_second, moving.eta_seconds
    crm_id = session.scalar(select(Campaign.crm_mailshot_id).where(Campaign.id == send.campaign_id))
    error = None
    if send.last_error_code:
        error = SendError(
            code=send.last_error_code,
            message=send.last_error_message or "",
            fix=send.last_error_fix,
        )
    return SendPublic(
        id=send.id,
        campaign_id=send.campaign_id,
        crm_mailshot_id=crm_id,
        state=send.state,
        snapshot=send.snapshot,
        scheduled_at=send.scheduled_at,
        requested_at=send.requested_at,
        requested_by=send.requested_by,
        started_at=send.started_at,
        finished_at=send.finished_at,
        paused_at=send.paused_at,
        total=send.total,
        counts=counts,
        done=done,
        rate_per_second=rate,
        eta_seconds=eta,
        last_error=error,
    )


@router.post("/integrated-campaigns/{crm_mailshot_id}/send", status_code=202)
def start_send(
    session: SessionDep,
    settings: SettingsDep,
    who: Writer,
    crm_mailshot_id: Id,
    body: Annotated[SendRequest | None, Body()] = None,
) -> SendPublic:
    """Send the campaign now, or at ``at``: after the preflight (finalised audience,
    someone to send to, end date, templates, DKIM), the ledger of every recipient is
    written and the send workers deliver it. A campaign is sent once."""
    at = body.at if body is not None else None
    send = service.start(session, settings, crm_mailshot_id, at=at, requested_by=who.user_email)
    return view(session, send)


@router.get("/integrated-campaigns/{crm_mailshot_id}/send")
def get_campaign_send(
    sessions: SessionsDep, session: SessionDep, _: Reader, crm_mailshot_id: Id
) -> SendPublic:
    """The campaign's send, with its counts per recipient state."""
    send_id = service.of_campaign(session, crm_mailshot_id).id
    session.rollback()
    service.settle(sessions, send_id)
    begin_read(session)
    return view(session, service.get(session, send_id))


@router.post("/integrated-campaigns/{crm_mailshot_id}/test-send")
def post_test_send(
    sessions: SessionsDep,
    settings: SettingsDep,
    _: Writer,
    crm_mailshot_id: Id,
    body: TestSendRequest,
) -> TestSendResult:
    """Render the campaign for each address (merge fields from its contact, if any) and
    deliver it now; no send, ledger or count is touched."""
    found = test_send(sessions, settings, crm_mailshot_id, body.addresses)
    return TestSendResult(items=[TestSendItem(**vars(item)) for item in found])


@router.get("/sends")
def sends_changed(
    sessions: SessionsDep,
    _: Reader,
    changed_after: Annotated[
        str | None,
        Query(max_length=CURSOR_MAX, description="The next_cursor of an earlier answer."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=FEED_MAX_LIMIT)] = FEED_DEFAULT_LIMIT,
) -> SendFeedPage:
    """The sends of Integrated Campaigns changed after the cursor, oldest change first
    (a change is served once it is a second old, so none is skipped). Ask again with
    ``next_cursor``; ``more`` says a full page came."""
    return sends_feed.changed(sessions, changed_after, limit)


@router.get("/sends/{send_id}")
def get_send(sessions: SessionsDep, session: SessionDep, _: Reader, send_id: Id) -> SendPublic:
    service.settle(sessions, send_id)
    return view(session, service.get(session, send_id))


@router.get("/sends/{send_id}/diagnosis")
def get_send_diagnosis(
    sessions: SessionsDep, session: SessionDep, settings: SettingsDep, _: Reader, send_id: Id
) -> SendDiagnosis:
    """Why the send is (not) moving, from the ESP's own data: paused, scheduled, every
    remaining recipient deferred, no send worker, the rate limit, recipients in doubt."""
    service.settle(sessions, send_id)
    send = service.get(session, send_id)
    found = diagnose(session, settings, send, db_now(session))
    return SendDiagnosis(
        send_id=send.id,
        state=send.state,
        findings=[SendFinding(**f.as_dict()) for f in found],
    )


@router.post("/sends/{send_id}/pause")
def pause_send(session: SessionDep, _: Writer, send_id: Id) -> SendPublic:
    """Stop a scheduled or sending send; workers stop at their next window."""
    return view(session, service.pause(session, send_id))


@router.post("/sends/{send_id}/resume")
def resume_send(session: SessionDep, _: Writer, send_id: Id) -> SendPublic:
    return view(session, service.resume(session, send_id))


@router.post("/sends/{send_id}/cancel")
def cancel_send(session: SessionDep, _: Writer, send_id: Id) -> SendPublic:
    """End the send: recipients not yet sent are cancelled."""
    return view(session, service.cancel(session, send_id))


@router.post("/sends/{send_id}/resend-in-doubt")
def resend_in_doubt(session: SessionDep, _: Writer, send_id: Id) -> ResendResult:
    """Send again to the recipients in doubt (they may get the message twice)."""
    send, moved = service.resend_in_doubt(session, send_id)
    return ResendResult(resent=moved, send=view(session, send))


@router.get("/sends/{send_id}/recipients")
def list_send_recipients(
    session: SessionDep,
    _: Reader,
    send_id: Id,
    state: RecipientState | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[SendRecipientPublic]:
    """The send's ledger in id order, optionally in one state."""
    rows, next_cursor = service.recipients_page(
        session, send_id, state=state, cursor=cursor, limit=limit
    )
    return Page(
        items=[SendRecipientPublic.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )
