"""People pages: search and page through people, see one, create and edit, and the
"No Email" opt-out toggle. Every write goes through :mod:`mailshot.crm.services.people`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.errors import AppError
from mailshot.core.webui import forms
from mailshot.core.webui.auth import FormDep, UserDep, page_router
from mailshot.core.webui.pages import DbDep, flash, render
from mailshot.core.webui.paging import pager
from mailshot.crm.models import MailingList, MailingListMember, Organisation
from mailshot.crm.schemas.people import PersonCreate, PersonUpdate
from mailshot.crm.services import people as service
from mailshot.crm.ui.common import PAGE_SIZE

router = page_router()
FIELDS = ("first_name", "last_name", "email", "organisation_id", "country", "job_title", "no_email")


def _organisations(db: Session) -> list[tuple[int, str]]:
    rows = db.execute(select(Organisation.id, Organisation.name).order_by(Organisation.name))
    return [(i, n) for i, n in rows.all()]


def _values(form: dict[str, Any]) -> dict[str, Any]:
    return {
        "first_name": forms.text(form, "first_name") or "",
        "last_name": forms.text(form, "last_name") or "",
        "email": forms.text(form, "email"),
        "organisation_id": forms.integer(form, "organisation_id"),
        "country": forms.text(form, "country"),
        "job_title": forms.text(form, "job_title"),
        "no_email": forms.checked(form, "no_email"),
    }


def _form(
    request: Request,
    db: Session,
    person: Any,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return render(
        request,
        "crm/person_form.html",
        {
            "title": "Edit person" if person else "New person",
            "active": "people",
            "person": person,
            "values": values,
            "errors": errors,
            "orgs": _organisations(db),
        },
        status_code=status,
    )


@router.get("/people", name="people")
def people_list(
    request: Request,
    db: DbDep,
    _: UserDep,
    q: str | None = None,
    cursor: str | None = None,
) -> Response:
    rows, next_cursor = service.list_page(db, cursor=cursor, limit=PAGE_SIZE, q=q or None)
    orgs = dict(_organisations(db))
    return render(
        request,
        "crm/people_list.html",
        {"title": "People", "active": "people", "people": rows, "q": q or "", "orgs": orgs}
        | pager(request, next_cursor),
    )


@router.get("/people/new", name="person_new")
def person_new(request: Request, db: DbDep, _: UserDep) -> Response:
    return _form(request, db, None, {}, {})


@router.post("/people/new", name="person_create")
def person_create(request: Request, db: DbDep, user: UserDep, form: FormDep) -> Response:
    values = _values(form)
    data, errors = forms.parse(PersonCreate, values)
    if data is not None:
        try:
            person = service.create(db, data, actor=user.actor)
        except AppError as exc:
            errors = forms.app_errors(exc)
        else:
            flash(request, f"{person.first_name} {person.last_name} was added.".strip())
            return RedirectResponse(request.url_for("person", person_id=person.id), 303)
    return _form(request, db, None, values, errors, 422)


@router.get("/people/{person_id}", name="person")
def person_detail(request: Request, db: DbDep, _: UserDep, person_id: int) -> Response:
    person = service.get(db, person_id)
    lists = db.execute(
        select(MailingList.id, MailingList.name, MailingListMember.subscribed)
        .join(MailingListMember, MailingListMember.list_id == MailingList.id)
        .where(MailingListMember.person_id == person_id)
        .order_by(MailingList.name)
    ).all()
    org = db.get(Organisation, person.organisation_id) if person.organisation_id else None
    return render(
        request,
        "crm/person_detail.html",
        {
            "title": f"{person.first_name} {person.last_name}".strip() or f"Person {person.id}",
            "active": "people",
            "person": person,
            "org": org,
            "lists": lists,
        },
    )


@router.get("/people/{person_id}/edit", name="person_edit")
def person_edit(request: Request, db: DbDep, _: UserDep, person_id: int) -> Response:
    person = service.get(db, person_id)
    values = {f: getattr(person, f) for f in FIELDS}
    return _form(request, db, person, values, {})


@router.post("/people/{person_id}/edit", name="person_update")
def person_update(
    request: Request, db: DbDep, user: UserDep, form: FormDep, person_id: int
) -> Response:
    person = service.get(db, person_id)
    values = _values(form)
    data, errors = forms.parse(PersonUpdate, values)
    if data is not None:
        try:
            service.update(db, person_id, data, actor=user.actor)
        except AppError as exc:
            errors = forms.app_errors(exc)
        else:
            flash(request, "The person was saved.")
            return RedirectResponse(request.url_for("person", person_id=person_id), 303)
    return _form(request, db, person, values, errors, 422)


@router.post("/people/{person_id}/opt-out", name="person_opt_out")
def person_opt_out(
    request: Request, db: DbDep, user: UserDep, form: FormDep, person_id: int
) -> Response:
    no_email = forms.checked(form, "no_email")
    service.update(db, person_id, PersonUpdate(no_email=no_email), actor=user.actor)
    flash(
        request,
        "Opted out: this person gets no marketing email."
        if no_email
        else "Opted in again: this person can get marketing email.",
    )
    return RedirectResponse(request.url_for("person", person_id=person_id), 303)
