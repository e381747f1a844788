"""The ESP's pages for sending a campaign: the Send panel's context (state in words, counts,
progress, rate and ETA, the buttons the state and the user's role allow, the preflight's
refusal before Send is pressed, why a send is not moving), its buttons (send now or
schedule, pause, resume, cancel, resend the recipients in doubt, a test send) and the
send's recipients by state. Every write goes through :mod:`mailshot.esp.services.sends`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.db.engine import db_now
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.core.webui.auth import FormDep, UserDep, page_router
from mailshot.core.webui.forms import text
from mailshot.core.webui.pages import DbDep, PageError, PageUser, flash, render
from mailshot.core.webui.paging import pager
from mailshot.esp import errors
from mailshot.esp.diagnosis.sends import diagnose, duration
from mailshot.esp.models import Campaign, Send
from mailshot.esp.scopes import ADMIN, ROLE_SCOPES, SENDS_WRITE
from mailshot.esp.services import campaigns
from mailshot.esp.services import sends as service
from mailshot.esp.services.send_states import RecipientState, SendState, allowed
from mailshot.esp.services.sends_preflight import preflight
from mailshot.esp.services.sends_test import test_send

router = page_router()
PAGE_SIZE = 50
S, R = SendState, RecipientState
#: The recipient states in the order the panel shows them, with their words.
STATE_LABELS = (
    (R.PENDING, "pending"),
    (R.SENDING, "sending now"),
    (R.SENT, "sent"),
    (R.DEFERRED, "deferred"),
    (R.FAILED, "failed"),
    (R.SUPPRESSED, "suppressed"),
    (R.IN_DOUBT, "in doubt"),
    (R.CANCELLED, "cancelled"),
)


def may_send(user: PageUser) -> bool:
    scopes = ROLE_SCOPES.get(user.role, [])
    return SENDS_WRITE in scopes or ADMIN in scopes


def _writer(user: UserDep) -> PageUser:
    if not may_send(user):
        raise PageError(
            403,
            "Not allowed to send",
            f"Your role ({user.role}) may look at sends but not start, pause, resume, cancel "
            "or test them.",
            "Ask an administrator to do it, or to give you the marketer role.",
        )
    return user


Writer = Annotated[PageUser, Depends(_writer)]


def _sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def state_words(send: Send | None, campaign: Campaign, progress: service.Progress) -> str:
    """The send's state as a sentence for a marketer."""
    if send is None:
        if campaign.status != "ready":
            return "Not ready to send: the audience is still arriving from the CRM."
        return "Ready to send: nothing has been sent yet."
    state, dt = S(send.state), _dt
    if state is S.SCHEDULED:
        return f"Scheduled for {dt(send.scheduled_at)}: nothing has been sent yet."
    if state is S.SENDING:
        return f"Sending: {progress.done:,} of {send.total:,} recipients done."
    if state is S.PAUSED:
        return (
            f"Paused since {dt(send.paused_at)}: {progress.done:,} of {send.total:,} done; "
            "nothing more goes out until you resume it."
        )
    if state is S.SENT:
        return f"Sent: finished at {dt(send.finished_at)}; every recipient has an outcome."
    if state is S.CANCELLED:
        return f"Cancelled at {dt(send.finished_at)}: recipients not yet sent then were not sent."
    return f"Failed at {dt(send.finished_at)}: {send.last_error_message or 'see below'}."


def _dt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


def panel(request: Request, db: Session, campaign: Campaign, user: PageUser) -> dict[str, Any]:
    """The Send panel's context for ``campaign`` (read after :func:`service.settle`)."""
    settings = _settings(request)
    send = service.of_campaign_id(db, campaign.id)
    now = db_now(db)
    progress = service.progress(send, now) if send is not None else service.Progress(0, None, None)
    refusal = None
    if send is None:
        try:
            preflight(campaign, settings, now, None)
        except AppError as exc:
            refusal = {"code": exc.code, "message": exc.message, "fix": exc.fix}
    state = send.state if send is not None else None
    can = may_send(user)
    actions: set[str] = set()
    if can and send is None and campaign.crm_mailshot_id is not None:
        actions.add("send")
    if can and state is not None:
        for name, target in (("pause", S.PAUSED), ("cancel", S.CANCELLED)):
            if allowed(state, target):
                actions.add(name)
        if state == S.PAUSED:
            actions.add("resume")
        if send is not None and send.in_doubt_count and state in (S.SENDING, S.PAUSED, S.SENT):
            actions.add("resend")
    findings = []
    if send is not None:
        findings = [f for f in diagnose(db, settings, send, now) if f.status != "pass"]
    counts = service.counts(send) if send is not None else {}
    confirm_cancel = request.query_params.get("confirm") == "cancel"
    live = state == S.SENDING
    rate_text = eta_text = ""
    if live and progress.rate_per_second:
        rate_text = f"{progress.rate_per_second:,.1f} per second"
        if progress.eta_seconds is not None:
            eta_text = f"about {duration(progress.eta_seconds)} left"
    return {
        "send": send,
        "send_state": state or ("ready" if campaign.status == "ready" else "not_ready"),
        "send_words": state_words(send, campaign, progress),
        "send_counts": [(s.value, label, counts.get(s.value, 0)) for s, label in STATE_LABELS],
        "progress": progress,
        "percent": progress.percent(send.total) if send is not None else 0,
        "can_send": can,
        "actions": actions,
        "refusal": refusal,
        "findings": findings,
        "refresh": live and not confirm_cancel,
        "confirm_cancel": confirm_cancel,
        "rate_text": rate_text,
        "eta_text": eta_text,
        "now": now,
    }


def _campaign(db: Session, campaign_id: int) -> Campaign:
    return campaigns.get(db, campaign_id)


def _back(request: Request, campaign_id: int) -> RedirectResponse:
    return RedirectResponse(request.url_for("esp_campaign", campaign_id=campaign_id), 303)


def _refused(request: Request, exc: AppError) -> None:
    flash(request, f"{exc.message} {exc.fix}".strip(), "bad")


def _parse_at(value: str | None) -> datetime | None:
    """The schedule field (``datetime-local``, read as UTC)."""
    if value is None:
        raise AppError(errors.SEND_TIME_INVALID, at="(none)", reason="no time was given")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise AppError(errors.SEND_TIME_INVALID, at=value, reason="not a date and time") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@router.post("/campaigns/{campaign_id}/send", name="esp_send_start")
def start(request: Request, db: DbDep, user: Writer, form: FormDep, campaign_id: int) -> Response:
    c = _campaign(db, campaign_id)
    crm_id = c.crm_mailshot_id
    try:
        at = _parse_at(text(form, "at")) if form.get("when") == "later" else None
        if crm_id is None:
            raise AppError(errors.SEND_AUDIENCE_NOT_FINAL, campaign_id=c.id, status=c.status)
        send = service.start(db, _settings(request), crm_id, at=at, requested_by=user.actor)
    except AppError as exc:
        db.rollback()
        _refused(request, exc)
        return _back(request, campaign_id)
    if send.state == S.SCHEDULED:
        flash(request, f"Scheduled for {_dt(send.scheduled_at)}: {send.total:,} recipients.")
    else:
        flash(request, f"Sending to {send.total:,} recipients.")
    return _back(request, campaign_id)


def _move(request: Request, db: Session, send_id: int, action: str) -> Response:
    try:
        if action == "pause":
            send = service.pause(db, send_id)
            message = "Paused: nothing more goes out until you resume it."
        elif action == "resume":
            send = service.resume(db, send_id)
            message = "Resumed."
        elif action == "cancel":
            send = service.cancel(db, send_id)
            message = "Cancelled: recipients not yet sent will not be sent."
        else:
            send, moved = service.resend_in_doubt(db, send_id)
            message = f"{moved:,} in-doubt recipients will be sent again."
    except AppError as exc:
        db.rollback()
        _refused(request, exc)
        campaign_id = service.get(db, send_id).campaign_id
        return _back(request, campaign_id)
    flash(request, message)
    return _back(request, send.campaign_id)


@router.post("/sends/{send_id}/pause", name="esp_send_pause")
def pause(request: Request, db: DbDep, _: Writer, send_id: int) -> Response:
    return _move(request, db, send_id, "pause")


@router.post("/sends/{send_id}/resume", name="esp_send_resume")
def resume(request: Request, db: DbDep, _: Writer, send_id: int) -> Response:
    return _move(request, db, send_id, "resume")


@router.post("/sends/{send_id}/cancel", name="esp_send_cancel")
def cancel(request: Request, db: DbDep, _: Writer, send_id: int) -> Response:
    return _move(request, db, send_id, "cancel")


@router.post("/sends/{send_id}/resend-in-doubt", name="esp_send_resend")
def resend(request: Request, db: DbDep, _: Writer, send_id: int) -> Response:
    return _move(request, db, send_id, "resend")


@router.post("/campaigns/{campaign_id}/test-send", name="esp_send_test")
def test(request: Request, db: DbDep, _: Writer, form: FormDep, campaign_id: int) -> Response:
    c = _campaign(db, campaign_id)
    crm_id = c.crm_mailshot_id
    db.rollback()
    addresses = [a for a in re.split(r"[\s,;]+", text(form, "addresses") or "") if a]
    try:
        if crm_id is None:
            raise AppError(errors.SEND_AUDIENCE_NOT_FINAL, campaign_id=c.id, status=c.status)
        outcomes = test_send(_sessions(request), _settings(request), crm_id, addresses)
    except AppError as exc:
        _refused(request, exc)
        return _back(request, campaign_id)
    sent = [o.address for o in outcomes if o.outcome == "sent"]
    if sent:
        flash(request, f"Test message sent to {', '.join(sent)}.")
    for o in outcomes:
        if o.outcome != "sent":
            reply = f"{o.smtp_code or ''} {o.text}".strip()
            flash(
                request,
                f"Test message to {o.address} {o.outcome.replace('_', ' ')}: {reply}",
                "bad",
            )
    return _back(request, campaign_id)


@router.get("/campaigns/{campaign_id}/send/recipients", name="esp_send_recipients")
def recipients(
    request: Request,
    db: DbDep,
    user: UserDep,
    campaign_id: int,
    state: str | None = None,
    cursor: str | None = None,
) -> Response:
    service.settle_campaign(_sessions(request), campaign_id)
    c = _campaign(db, campaign_id)
    send = service.of_campaign_id(db, c.id)
    if send is None:
        raise AppError(errors.SEND_NOT_FOUND, what=f"of campaign {c.id} yet")
    wanted = state if state in {s.value for s in RecipientState} else None
    rows, next_cursor = service.recipients_page(
        db, send.id, state=wanted, cursor=cursor, limit=PAGE_SIZE
    )
    counts = service.counts(send)
    return render(
        request,
        "esp/send_recipients.html",
        {
            "title": f"{c.name}: recipients of the send",
            "active": "esp_campaigns",
            "c": c,
            "send": send,
            "rows": rows,
            "state": wanted or "",
            "tabs": [(s.value, label, counts.get(s.value, 0)) for s, label in STATE_LABELS],
            "can_send": may_send(user),
            "resend_allowed": may_send(user)
            and send.in_doubt_count > 0
            and send.state in (S.SENDING, S.PAUSED, S.SENT),
        }
        | pager(request, next_cursor),
    )
