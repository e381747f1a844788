"""Mailshot pages: the list with sync and send badges, one mailshot with every field, its
sandboxed HTML preview, its sync status and its send in the ESP, the create/edit form
(with the live name counter against the ESP's limit), and Recount Audience. The sync
buttons live in :mod:`mailshot.crm.ui.sync_pages`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.contracts.states import SyncState
from mailshot.core.errors import AppError
from mailshot.core.webui import forms
from mailshot.core.webui.auth import FormDep, UserDep, page_router
from mailshot.core.webui.pages import DbDep, flash, render
from mailshot.core.webui.paging import pager
from mailshot.crm.models import MailingList, Mailshot, MarketingCampaign, Template
from mailshot.crm.schemas.mailshot_sends import MailshotSendPublic
from mailshot.crm.schemas.mailshots import MailshotCreate, MailshotUpdate
from mailshot.crm.services import audience
from mailshot.crm.services import mailshots as service
from mailshot.crm.sync import preflight, progress
from mailshot.crm.ui.common import PAGE_SIZE, REASON_LABELS, esp_name_limit, esp_page_url

router = page_router()

SYNC_STATES = tuple((str(s), s.replace("_", " ").capitalize()) for s in SyncState)
TYPES = (
    ("static", "Static"),
    ("refresh_non_recurring", "Refresh, non-recurring"),
    ("refresh_recurring", "Refresh, recurring"),
)
STATUSES = (("draft", "Draft"), ("ready", "Ready"), ("sent", "Sent"), ("closed", "Closed"))
#: The recipient states of a send, in words, in the order the page shows them.
SEND_COUNT_WORDS = (
    ("sent", "Sent"),
    ("failed", "Failed"),
    ("deferred", "Deferred, to be retried"),
    ("suppressed", "Suppressed at send time"),
    ("in_doubt", "In doubt"),
    ("cancelled", "Cancelled"),
    ("pending", "Waiting"),
    ("sending", "Being sent"),
)
SOURCES = (("mailing_list", "A mailing list"), ("marketing_campaign", "A marketing campaign"))
FIELDS = (
    "name",
    "description",
    "subject",
    "from_name",
    "from_address",
    "reply_to",
    "template_id",
    "html",
    "text",
    "audience_source",
    "mailing_list_id",
    "marketing_campaign_id",
    "campaign_member_statuses",
    "mailshot_type",
    "refresh_period_hours",
    "status",
    "sync_with",
)


def _choices(db: Session) -> dict[str, Any]:
    def pairs(model: Any) -> list[tuple[int, str]]:
        rows = db.execute(select(model.id, model.name).order_by(model.name)).all()
        return [(i, n) for i, n in rows]

    campaigns = db.execute(
        select(MarketingCampaign.id, MarketingCampaign.name, MarketingCampaign.member_statuses)
    ).all()
    return {
        "lists": pairs(MailingList),
        "campaigns": pairs(MarketingCampaign),
        "campaign_statuses": {i: s or [] for i, _, s in campaigns},
        "templates_": pairs(Template),
        "types": TYPES,
        "statuses": STATUSES,
        "sources": SOURCES,
        "name_max": esp_name_limit(db),
    }


def _values(form: dict[str, Any]) -> dict[str, Any]:
    statuses = [s.strip() for s in (forms.text(form, "campaign_member_statuses") or "").split(",")]
    raw_html = form.get("html")
    raw_text = form.get("text")
    return {
        "name": forms.text(form, "name") or "",
        "description": forms.text(form, "description"),
        "subject": forms.text(form, "subject"),
        "from_name": forms.text(form, "from_name"),
        "from_address": forms.text(form, "from_address"),
        "reply_to": forms.text(form, "reply_to"),
        "template_id": forms.integer(form, "template_id"),
        "html": raw_html if isinstance(raw_html, str) and raw_html.strip() else None,
        "text": raw_text if isinstance(raw_text, str) and raw_text.strip() else None,
        "audience_source": forms.text(form, "audience_source") or "mailing_list",
        "mailing_list_id": forms.integer(form, "mailing_list_id"),
        "marketing_campaign_id": forms.integer(form, "marketing_campaign_id"),
        "campaign_member_statuses": [s for s in statuses if s],
        "mailshot_type": forms.text(form, "mailshot_type") or "static",
        "refresh_period_hours": forms.integer(form, "refresh_period_hours"),
        "status": forms.text(form, "status") or "draft",
        "sync_with": forms.text(form, "sync_with"),
    }


def _form_page(
    request: Request,
    db: Session,
    mailshot: Mailshot | None,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    title = f"Edit {mailshot.name}" if mailshot else "New mailshot"
    ctx = {
        "title": title,
        "active": "mailshots",
        "mailshot": mailshot,
        "values": values,
        "errors": errors,
    }
    return render(request, "crm/mailshot_form.html", ctx | _choices(db), status_code=status_code)


@router.get("/mailshots", name="mailshots")
def mailshot_list(
    request: Request,
    db: DbDep,
    _: UserDep,
    q: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
) -> Response:
    rows, next_cursor = service.list_page(
        db, cursor=cursor, limit=PAGE_SIZE, q=q or None, sync_state=state or None
    )
    return render(
        request,
        "crm/mailshot_list.html",
        {
            "title": "Mailshots",
            "active": "mailshots",
            "mailshots": rows,
            "q": q or "",
            "state": state or "",
            "sync_states": SYNC_STATES,
            "name_max": esp_name_limit(db),
        }
        | pager(request, next_cursor),
    )


@router.get("/mailshots/new", name="mailshot_new")
def mailshot_new(request: Request, db: DbDep, _: UserDep) -> Response:
    return _form_page(request, db, None, {"sync_with": "esp"}, {})


@router.post("/mailshots/new", name="mailshot_create")
def mailshot_create(request: Request, db: DbDep, _: UserDep, form: FormDep) -> Response:
    values = _values(form)
    data, errors = forms.parse(MailshotCreate, values)
    if data is not None:
        try:
            ms = service.create(db, data)
        except AppError as exc:
            db.rollback()
            errors = forms.app_errors(exc)
        else:
            flash(request, f"The mailshot “{ms.name}” was created.")
            return RedirectResponse(request.url_for("mailshot", mailshot_id=ms.id), 303)
    return _form_page(request, db, None, values, errors, 422)


@router.get("/mailshots/{mailshot_id}", name="mailshot")
def mailshot_detail(
    request: Request, db: DbDep, _: UserDep, mailshot_id: int, recount: int = 0
) -> Response:
    ms = service.get(db, mailshot_id)
    counts: audience.AudienceCounts | None = None
    counts_error: AppError | None = None
    if recount:
        try:
            counts = audience.recount(db, ms)
        except AppError as exc:
            counts_error = exc
    refs = {
        "list": db.get(MailingList, ms.mailing_list_id) if ms.mailing_list_id else None,
        "campaign": db.get(MarketingCampaign, ms.marketing_campaign_id)
        if ms.marketing_campaign_id
        else None,
        "template": db.get(Template, ms.template_id) if ms.template_id else None,
    }
    status = progress.mailshot_status(db, mailshot_id)
    check = preflight.run(db, ms)
    send = MailshotSendPublic.of(ms.send) if ms.send is not None else None
    return render(
        request,
        "crm/mailshot_detail.html",
        {
            "title": ms.name,
            "status": status,
            "sync_fix": status.last_error.fix if status.last_error else None,
            "exclusions_url": request.url_for("crm_sync_exclusions", job_id=ms.sync_job_id).path
            if ms.sync_job_id and ms.recipients_excluded
            else None,
            "active": "mailshots",
            "ms": ms,
            "refs": refs,
            "counts": counts,
            "counts_error": counts_error,
            "reason_labels": REASON_LABELS,
            "name_max": esp_name_limit(db),
            "name_length": len(ms.name),
            "preflight": check,
            "progress_url": request.url_for("mailshot_progress", mailshot_id=ms.id).path,
            "send": send,
            "send_states": SEND_COUNT_WORDS,
            "esp_campaign_url": esp_page_url(request, f"campaigns/{send.esp_campaign_id}")
            if send is not None
            else None,
        },
        preview=bool(ms.html),
    )


@router.get("/mailshots/{mailshot_id}/edit", name="mailshot_edit")
def mailshot_edit(request: Request, db: DbDep, _: UserDep, mailshot_id: int) -> Response:
    ms = service.get(db, mailshot_id)
    values: dict[str, Any] = {f: getattr(ms, f) for f in FIELDS}
    values["campaign_member_statuses"] = list(ms.campaign_member_statuses or [])
    return _form_page(request, db, ms, values, {})


@router.post("/mailshots/{mailshot_id}/edit", name="mailshot_update")
def mailshot_update(
    request: Request, db: DbDep, _: UserDep, form: FormDep, mailshot_id: int
) -> Response:
    ms = service.get(db, mailshot_id)
    values = _values(form)
    data, errors = forms.parse(MailshotUpdate, values)
    if data is not None:
        try:
            service.update(db, mailshot_id, data)
        except AppError as exc:
            db.rollback()
            ms = service.get(db, mailshot_id)
            errors = forms.app_errors(exc)
        else:
            flash(request, "The mailshot was saved.")
            return RedirectResponse(request.url_for("mailshot", mailshot_id=mailshot_id), 303)
    return _form_page(request, db, ms, values, errors, 422)


@router.post("/mailshots/{mailshot_id}/delete", name="mailshot_delete")
def mailshot_delete(request: Request, db: DbDep, _: UserDep, mailshot_id: int) -> Response:
    ms = service.get(db, mailshot_id)
    name = ms.name
    service.delete(db, mailshot_id)
    flash(request, f"The mailshot “{name}” was deleted.")
    return RedirectResponse(request.url_for("mailshots"), 303)
