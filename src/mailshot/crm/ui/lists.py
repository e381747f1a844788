"""Mailing list pages: the lists, one list with its members (add people, unsubscribe or
re-subscribe, remove), create and edit. Writes go through
:mod:`mailshot.crm.services.mailing_lists`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from mailshot.core.errors import AppError
from mailshot.core.webui import forms
from mailshot.core.webui.auth import FormDep, UserDep, page_router
from mailshot.core.webui.pages import DbDep, flash, render
from mailshot.core.webui.paging import pager
from mailshot.crm.schemas.mailing_lists import (
    ListMembersAdd,
    ListMemberUpdate,
    MailingListCreate,
    MailingListUpdate,
)
from mailshot.crm.services import mailing_lists as service
from mailshot.crm.ui.common import PAGE_SIZE
from mailshot.crm.ui.members import MAX_PER_FORM, people_by_id, people_to_add

router = page_router()


def _values(form: dict[str, Any]) -> dict[str, Any]:
    return {"name": forms.text(form, "name") or "", "description": forms.text(form, "description")}


def _form(
    request: Request, ml: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Response:
    return render(
        request,
        "crm/list_form.html",
        {
            "title": f"Edit {ml.name}" if ml else "New mailing list",
            "active": "mailing_lists",
            "ml": ml,
            "values": values,
            "errors": errors,
        },
        status_code=status,
    )


@router.get("/mailing-lists", name="mailing_lists")
def lists_page(
    request: Request, db: DbDep, _: UserDep, q: str | None = None, cursor: str | None = None
) -> Response:
    rows, next_cursor = service.list_page(db, cursor=cursor, limit=PAGE_SIZE, q=q or None)
    return render(
        request,
        "crm/list_list.html",
        {"title": "Mailing lists", "active": "mailing_lists", "lists": rows, "q": q or ""}
        | pager(request, next_cursor),
    )


@router.get("/mailing-lists/new", name="mailing_list_new")
def list_new(request: Request, _: UserDep) -> Response:
    return _form(request, None, {}, {})


@router.post("/mailing-lists/new", name="mailing_list_create")
def list_create(request: Request, db: DbDep, _: UserDep, form: FormDep) -> Response:
    values = _values(form)
    data, errors = forms.parse(MailingListCreate, values)
    if data is not None:
        try:
            ml = service.create(db, data)
        except AppError as exc:
            errors = forms.app_errors(exc)
        else:
            flash(request, f"The mailing list “{ml.name}” was created.")
            return RedirectResponse(request.url_for("mailing_list", list_id=ml.id), 303)
    return _form(request, None, values, errors, 422)


@router.get("/mailing-lists/{list_id}", name="mailing_list")
def list_detail(
    request: Request,
    db: DbDep,
    _: UserDep,
    list_id: int,
    cursor: str | None = None,
    subscribed: str | None = None,
) -> Response:
    ml = service.get(db, list_id)
    flag = {"yes": True, "no": False}.get(subscribed or "")
    members, next_cursor = service.members_page(
        db, list_id, cursor=cursor, limit=PAGE_SIZE, subscribed=flag
    )
    return render(
        request,
        "crm/list_detail.html",
        {
            "title": ml.name,
            "active": "mailing_lists",
            "ml": ml,
            "members": members,
            "people": people_by_id(db, (m.person_id for m in members)),
            "subscribed": subscribed or "",
            "max_per_form": MAX_PER_FORM,
        }
        | pager(request, next_cursor),
    )


@router.get("/mailing-lists/{list_id}/edit", name="mailing_list_edit")
def list_edit(request: Request, db: DbDep, _: UserDep, list_id: int) -> Response:
    ml = service.get(db, list_id)
    return _form(request, ml, {"name": ml.name, "description": ml.description}, {})


@router.post("/mailing-lists/{list_id}/edit", name="mailing_list_update")
def list_update(request: Request, db: DbDep, _: UserDep, form: FormDep, list_id: int) -> Response:
    ml = service.get(db, list_id)
    values = _values(form)
    data, errors = forms.parse(MailingListUpdate, values)
    if data is not None:
        try:
            service.update(db, list_id, data)
        except AppError as exc:
            errors = forms.app_errors(exc)
        else:
            flash(request, "The mailing list was saved.")
            return RedirectResponse(request.url_for("mailing_list", list_id=list_id), 303)
    return _form(request, ml, values, errors, 422)


@router.post("/mailing-lists/{list_id}/delete", name="mailing_list_delete")
def list_delete(request: Request, db: DbDep, _: UserDep, list_id: int) -> Response:
    name = service.get(db, list_id).name
    service.delete(db, list_id)
    flash(request, f"The mailing list “{name}” was deleted.")
    return RedirectResponse(request.url_for("mailing_lists"), 303)


@router.post("/mailing-lists/{list_id}/members", name="mailing_list_add")
def members_add(
    request: Request, db: DbDep, user: UserDep, form: FormDep, list_id: int
) -> Response:
    service.get(db, list_id)
    ids = people_to_add(request, db, form)
    subscribed = not forms.checked(form, "unsubscribed")
    if ids is not None:
        done = service.add_members(
            db, list_id, ListMembersAdd(person_ids=ids, subscribed=subscribed), actor=user.actor
        )
        flash(request, f"{done.written} people are now members ({done.changed} added or changed).")
    return RedirectResponse(request.url_for("mailing_list", list_id=list_id), 303)


@router.post("/mailing-lists/{list_id}/members/{person_id}", name="mailing_list_member")
def member_update(
    request: Request, db: DbDep, user: UserDep, form: FormDep, list_id: int, person_id: int
) -> Response:
    if form.get("action") == "remove":
        service.remove_member(db, list_id, person_id, actor=user.actor)
        flash(request, f"Person {person_id} was removed from the list.")
    else:
        subscribed = forms.checked(form, "subscribed")
        service.update_member(
            db, list_id, person_id, ListMemberUpdate(subscribed=subscribed), actor=user.actor
        )
        flash(
            request,
            f"Person {person_id} was {'re-subscribed' if subscribed else 'unsubscribed'}.",
        )
    return RedirectResponse(request.url_for("mailing_list", list_id=list_id), 303)
