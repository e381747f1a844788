"""Template pages (email templates a mailshot can start from): the list, one template with
its sandboxed preview, create and edit. Writes go through
:mod:`mailshot.crm.services.templates`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from mailshot.core.errors import AppError
from mailshot.core.webui import forms
from mailshot.core.webui.auth import FormDep, UserDep, page_router
from mailshot.core.webui.pages import DbDep, flash, render
from mailshot.core.webui.paging import pager
from mailshot.crm.schemas.templates import TemplateCreate, TemplateUpdate
from mailshot.crm.services import templates as service
from mailshot.crm.ui.common import PAGE_SIZE

router = page_router()


def _values(form: dict[str, Any]) -> dict[str, Any]:
    html, text = form.get("html"), form.get("text")
    return {
        "name": forms.text(form, "name") or "",
        "subject": forms.text(form, "subject"),
        "html": html if isinstance(html, str) and html.strip() else None,
        "text": text if isinstance(text, str) and text.strip() else None,
    }


def _form(
    request: Request, t: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Response:
    return render(
        request,
        "crm/template_form.html",
        {
            "title": f"Edit {t.name}" if t else "New template",
            "active": "templates",
            "t": t,
            "values": values,
            "errors": errors,
        },
        status_code=status,
    )


@router.get("/templates", name="templates")
def templates_page(
    request: Request, db: DbDep, _: UserDep, q: str | None = None, cursor: str | None = None
) -> Response:
    rows, next_cursor = service.list_page(db, cursor=cursor, limit=PAGE_SIZE, q=q or None)
    return render(
        request,
        "crm/template_list.html",
        {"title": "Templates", "active": "templates", "templates_": rows, "q": q or ""}
        | pager(request, next_cursor),
    )


@router.get("/templates/new", name="template_new")
def template_new(request: Request, _: UserDep) -> Response:
    return _form(request, None, {}, {})


@router.post("/templates/new", name="template_create")
def template_create(request: Request, db: DbDep, _: UserDep, form: FormDep) -> Response:
    values = _values(form)
    data, errors = forms.parse(TemplateCreate, values)
    if data is not None:
        try:
            t = service.create(db, data)
        except AppError as exc:
            errors = forms.app_errors(exc)
        else:
            flash(request, f"The template “{t.name}” was created.")
            return RedirectResponse(request.url_for("template", template_id=t.id), 303)
    return _form(request, None, values, errors, 422)


@router.get("/templates/{template_id}", name="template")
def template_detail(request: Request, db: DbDep, _: UserDep, template_id: int) -> Response:
    t = service.get(db, template_id)
    return render(
        request,
        "crm/template_detail.html",
        {"title": t.name, "active": "templates", "t": t},
        preview=bool(t.html),
    )


@router.get("/templates/{template_id}/edit", name="template_edit")
def template_edit(request: Request, db: DbDep, _: UserDep, template_id: int) -> Response:
    t = service.get(db, template_id)
    values = {"name": t.name, "subject": t.subject, "html": t.html, "text": t.text}
    return _form(request, t, values, {})


@router.post("/templates/{template_id}/edit", name="template_update")
def template_update(
    request: Request, db: DbDep, _: UserDep, form: FormDep, template_id: int
) -> Response:
    t = service.get(db, template_id)
    values = _values(form)
    data, errors = forms.parse(TemplateUpdate, values)
    if data is not None:
        try:
            service.update(db, template_id, data)
        except AppError as exc:
            errors = forms.app_errors(exc)
        else:
            flash(request, "The template was saved.")
            return RedirectResponse(request.url_for("template", template_id=template_id), 303)
    return _form(request, t, values, errors, 422)


@router.post("/templates/{template_id}/delete", name="template_delete")
def template_delete(request: Request, db: DbDep, _: UserDep, template_id: int) -> Response:
    name = service.get(db, template_id).name
    service.delete(db, template_id)
    flash(request, f"The template “{name}” was deleted.")
    return RedirectResponse(request.url_for("templates"), 303)
