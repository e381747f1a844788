"""Marketing campaign pages: the campaigns, one campaign with its members and their
statuses, create and edit. Writes go through
:mod:`mailshot.crm.services.marketing_campaigns`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from mailshot.core.errors import AppError
from mailshot.core.webui import forms
from mailshot.core.webui.auth import FormDep, UserDep, page_router
from mailshot.core.webui.pages import DbDep, flash, render
from mailshot.core.webui.paging import pager
from mailshot.crm.schemas.marketing_campaigns import (
    CampaignCreate,
    CampaignMembersAdd,
    CampaignMemberUpdate,
    CampaignUpdate,
)
from mailshot.crm.services import marketing_campaigns as service
from mailshot.crm.ui.common import PAGE_SIZE
from mailshot.crm.ui.members import MAX_PER_FORM, people_by_id, people_to_add

router = page_router()
FIELDS = ("name", "status", "category", "start_date", "end_date", "budget", "goals")


def _values(form: dict[str, Any]) -> dict[str, Any]:
    statuses = (forms.text(form, "member_statuses") or "").split(",")
    return {
        "name": forms.text(form, "name") or "",
        "status": forms.text(form, "status") or "Planned",
        "category": forms.text(form, "category"),
        "start_date": forms.text(form, "start_date"),
        "end_date": forms.text(form, "end_date"),
        "budget": forms.text(form, "budget"),
        "goals": forms.text(form, "goals"),
        "member_statuses": [s.strip() for s in statuses if s.strip()],
    }


def _form(
    request: Request, c: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Response:
    return render(
        request,
        "crm/campaign_form.html",
        {
            "title": f"Edit {c.name}" if c else "New marketing campaign",
            "active": "campaigns",
            "c": c,
            "values": values,
            "errors": errors,
        },
        status_code=status,
    )


@router.get("/campaigns", name="campaigns")
def campaigns_page(
    request: Request, db: DbDep, _: UserDep, q: str | None = None, cursor: str | None = None
) -> Response:
    rows, next_cursor = service.list_page(db, cursor=cursor, limit=PAGE_SIZE, q=q or None)
    return render(
        request,
        "crm/campaign_list.html",
        {"title": "Marketing campaigns", "active": "campaigns", "campaigns": rows, "q": q or ""}
        | pager(request, next_cursor),
    )


@router.get("/campaigns/new", name="campaign_new")
def campaign_new(request: Request, _: UserDep) -> Response:
    return _form(request, None, {"status": "Planned"}, {})


@router.post("/campaigns/new", name="campaign_create")
def campaign_create(request: Request, db: DbDep, _: UserDep, form: FormDep) -> Response:
    values = _values(form)
    data, errors = forms.parse(CampaignCreate, values)
    if data is not None:
        try:
            c = service.create(db, data)
        except AppError as exc:
            errors = forms.app_errors(exc)
        else:
            flash(request, f"The campaign “{c.name}” was created.")
            return RedirectResponse(request.url_for("campaign", campaign_id=c.id), 303)
    return _form(request, None, values, errors, 422)


@router.get("/campaigns/{campaign_id}", name="campaign")
def campaign_detail(
    request: Request,
    db: DbDep,
    _: UserDep,
    campaign_id: int,
    cursor: str | None = None,
    status: str | None = None,
) -> Response:
    c = service.get(db, campaign_id)
    members, next_cursor = service.members_page(
        db, campaign_id, cursor=cursor, limit=PAGE_SIZE, status=status or None
    )
    return render(
        request,
        "crm/campaign_detail.html",
        {
            "title": c.name,
            "active": "campaigns",
            "c": c,
            "members": members,
            "people": people_by_id(db, (m.person_id for m in members)),
            "status": status or "",
            "max_per_form": MAX_PER_FORM,
        }
        | pager(request, next_cursor),
    )


@router.get("/campaigns/{campaign_id}/edit", name="campaign_edit")
def campaign_edit(request: Request, db: DbDep, _: UserDep, campaign_id: int) -> Response:
    c = service.get(db, campaign_id)
    values: dict[str, Any] = {f: getattr(c, f) for f in FIELDS}
    values["member_statuses"] = list(c.member_statuses or [])
    return _form(request, c, values, {})


@router.post("/campaigns/{campaign_id}/edit", name="campaign_update")
def campaign_update(
    request: Request, db: DbDep, _: UserDep, form: FormDep, campaign_id: int
) -> Response:
    c = service.get(db, campaign_id)
    values = _values(form)
    data, errors = forms.parse(CampaignUpdate, values)
    if data is not None:
        try:
            service.update(db, campaign_id, data)
        except AppError as exc:
            db.rollback()
            c = service.get(db, campaign_id)
            errors = forms.app_errors(exc)
        else:
            flash(request, "The campaign was saved.")
            return RedirectResponse(request.url_for("campaign", campaign_id=campaign_id), 303)
    return _form(request, c, values, errors, 422)


@router.post("/campaigns/{campaign_id}/delete", name="campaign_delete")
def campaign_delete(request: Request, db: DbDep, _: UserDep, campaign_id: int) -> Response:
    name = service.get(db, campaign_id).name
    service.delete(db, campaign_id)
    flash(request, f"The campaign “{name}” was deleted.")
    return RedirectResponse(request.url_for("campaigns"), 303)


@router.post("/campaigns/{campaign_id}/members", name="campaign_add")
def members_add(
    request: Request, db: DbDep, _: UserDep, form: FormDep, campaign_id: int
) -> Response:
    service.get(db, campaign_id)
    ids = people_to_add(request, db, form)
    status = forms.text(form, "status") or ""
    if ids is not None:
        data, errors = forms.parse(CampaignMembersAdd, {"person_ids": ids, "status": status})
        if data is None:
            flash(request, f"Nobody was added: the status {errors.get('status', '')}.", "bad")
        else:
            try:
                done = service.add_members(db, campaign_id, data)
            except AppError as exc:
                flash(request, f"Nobody was added: {exc.message}", "bad")
            else:
                flash(request, f"{done.written} people are now members with status {status}.")
    return RedirectResponse(request.url_for("campaign", campaign_id=campaign_id), 303)


@router.post("/campaigns/{campaign_id}/members/{person_id}", name="campaign_member")
def member_update(
    request: Request, db: DbDep, _: UserDep, form: FormDep, campaign_id: int, person_id: int
) -> Response:
    if form.get("action") == "remove":
        service.remove_member(db, campaign_id, person_id)
        flash(request, f"Person {person_id} was removed from the campaign.")
        return RedirectResponse(request.url_for("campaign", campaign_id=campaign_id), 303)
    data, errors = forms.parse(CampaignMemberUpdate, {"status": forms.text(form, "status") or ""})
    if data is None:
        flash(request, f"The status {errors.get('status', 'is not valid')}.", "bad")
    else:
        try:
            service.update_member(db, campaign_id, person_id, data)
        except AppError as exc:
            flash(request, exc.message, "bad")
        else:
            flash(request, f"Person {person_id} now has the status {data.status}.")
    return RedirectResponse(request.url_for("campaign", campaign_id=campaign_id), 303)
