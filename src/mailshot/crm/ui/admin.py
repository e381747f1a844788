"""Administrators' pages of the CRM: API keys (list, create with the secret shown once,
enable, disable), users (list, create, enable/disable, role) and CRM settings (GDPR mode).
A marketer who opens any of them gets a 403 page that says why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import SecretStr
from sqlalchemy.orm import Session

from mailshot.core.access.auth import Principal
from mailshot.core.errors import AppError
from mailshot.core.webui import forms
from mailshot.core.webui.auth import FormDep, admin_only, page_router
from mailshot.core.webui.keys import KeyRoutes, add_key_routes
from mailshot.core.webui.pages import DbDep, PageUser, flash, render
from mailshot.core.webui.paging import pager
from mailshot.crm.schemas.compliance import CrmSettingsUpdate
from mailshot.crm.schemas.users import UserCreate, UserUpdate
from mailshot.crm.scopes import ALL_SCOPES
from mailshot.crm.services import api_keys, compliance, users
from mailshot.crm.ui.common import PAGE_SIZE

router = page_router()
UsersAdmin = Annotated[PageUser, admin_only("manage users")]
SettingsAdmin = Annotated[PageUser, admin_only("change the CRM's settings")]


def _principal(user: PageUser) -> Principal:
    """The signed-in administrator as the services' audit sees a caller."""
    return Principal(
        key_id=0,
        key_name="web session",
        key_prefix="web",
        user_id=user.id,
        user_email=user.email,
        role=user.role,
        scopes=frozenset({"admin"}),
    )


add_key_routes(
    router,
    api_keys.KEYS,
    routes=KeyRoutes(
        page="api_keys", create="api_key_create", enabled="api_key_enabled", rotate="api_key_rotate"
    ),
    all_scopes=ALL_SCOPES,
)


# ---- users ---------------------------------------------------------------------------------
def _users_page(
    request: Request,
    db: Session,
    *,
    cursor: str | None = None,
    errors: forms.FieldErrors | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    rows, next_cursor = users.list_page(db, cursor=cursor, limit=PAGE_SIZE)
    return render(
        request,
        "crm/users.html",
        {
            "title": "Users",
            "active": "users",
            "users": rows,
            "errors": errors or {},
            "values": values or {},
        }
        | pager(request, next_cursor),
        status_code=status,
    )


@router.get("/users", name="users")
def users_page(request: Request, db: DbDep, _: UsersAdmin, cursor: str | None = None) -> Response:
    return _users_page(request, db, cursor=cursor)


@router.post("/users", name="user_create")
def user_create(request: Request, db: DbDep, admin: UsersAdmin, form: FormDep) -> Response:
    password = forms.text(form, "password")
    values = {
        "email": forms.text(form, "email"),
        "name": forms.text(form, "name") or "",
        "role": forms.text(form, "role") or "marketer",
        "password": SecretStr(password) if password else None,
    }
    data, errors = forms.parse(UserCreate, values)
    if data is not None:
        try:
            made = users.create(db, data, by=_principal(admin))
        except AppError as exc:
            errors = forms.app_errors(exc)
        else:
            flash(request, f"The user {made.email} was created.")
            return RedirectResponse(request.url_for("users"), 303)
    shown = {k: v for k, v in values.items() if k != "password"}
    return _users_page(request, db, errors=errors, values=shown, status=422)


@router.post("/users/{user_id}", name="user_update")
def user_update(
    request: Request, db: DbDep, admin: UsersAdmin, form: FormDep, user_id: int
) -> Response:
    patch: dict[str, Any] = {}
    if "enabled" in form:
        patch["enabled"] = forms.checked(form, "enabled")
    if forms.text(form, "role"):
        patch["role"] = forms.text(form, "role")
    data, errors = forms.parse(UserUpdate, patch)
    if data is None:
        flash(request, "; ".join(f"{k}: {v}" for k, v in errors.items()), "bad")
    else:
        try:
            changed = users.update(db, user_id, data, by=_principal(admin))
        except AppError as exc:
            flash(request, f"{exc.message} {exc.fix}".strip(), "bad")
        else:
            flash(request, f"The user {changed.email} was saved.")
    return RedirectResponse(request.url_for("users"), 303)


# ---- settings ------------------------------------------------------------------------------
@router.get("/settings", name="crm_settings")
def settings_page(request: Request, db: DbDep, _: SettingsAdmin) -> Response:
    return render(
        request,
        "crm/settings.html",
        {"title": "Settings", "active": "crm_settings", "s": compliance.get_settings(db)},
    )


@router.post("/settings", name="crm_settings_save")
def settings_save(request: Request, db: DbDep, admin: SettingsAdmin, form: FormDep) -> Response:
    compliance.put_settings(
        db,
        CrmSettingsUpdate(gdpr_mode=forms.checked(form, "gdpr_mode")),
        actor=admin.actor,
    )
    flash(request, "The settings were saved.")
    return RedirectResponse(request.url_for("crm_settings"), 303)
