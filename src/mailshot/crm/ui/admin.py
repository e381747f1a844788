"""Administrators' pages of the CRM: API keys (list, create with the secret shown once,
enable, disable), users (list, create, enable/disable, role) and CRM settings (GDPR mode).
A marketer who opens any of them gets a 403 page that says why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.crm.models import User
from mailshot.crm.schemas.compliance import CrmSettingsUpdate
from mailshot.crm.schemas.users import UserCreate, UserUpdate
from mailshot.crm.scopes import ALL_SCOPES
from mailshot.crm.services import api_keys, compliance, users
from mailshot.crm.ui.common import PAGE_SIZE, page_router
from mailshot.errors import AppError
from mailshot.keyadmin import SHOWN_ONCE, ApiKeyCreated, ApiKeyRotate
from mailshot.keyauth import Principal
from mailshot.webui import forms
from mailshot.webui.auth import admin_only, form_data, form_list
from mailshot.webui.keys import REFUSALS_SHOWN, KeyRoutes, parse_create, render_keys
from mailshot.webui.pages import PageUser, db_session, flash, render
from mailshot.webui.paging import pager

router = page_router()
DbDep = Annotated[Session, Depends(db_session)]
FormDep = Annotated[dict[str, Any], Depends(form_data)]
ListsDep = Annotated[dict[str, list[str]], Depends(form_list)]
KeysAdmin = Annotated[PageUser, admin_only("manage API keys")]
UsersAdmin = Annotated[PageUser, admin_only("manage users")]
SettingsAdmin = Annotated[PageUser, admin_only("change the CRM's settings")]


def _actor(user: PageUser) -> str:
    return f"{user.email} (web)"


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


KEY_ROUTES = KeyRoutes(
    page="api_keys", create="api_key_create", enabled="api_key_enabled", rotate="api_key_rotate"
)


def _keys_page(
    request: Request,
    db: Session,
    *,
    created: ApiKeyCreated | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    keys, next_cursor = api_keys.page(
        db, cursor=request.query_params.get("cursor"), limit=PAGE_SIZE
    )
    refusals, _ = api_keys.refusals(db, cursor=None, limit=REFUSALS_SHOWN)
    key_users = db.execute(
        select(User.id, User.email, User.role).where(User.enabled.is_(True)).order_by(User.email)
    ).all()
    return render_keys(
        request,
        routes=KEY_ROUTES,
        keys=keys,
        refusals=refusals,
        key_users=list(key_users),
        all_scopes=ALL_SCOPES,
        pager=pager(request, next_cursor),
        created=created,
        errors=errors,
        values=values,
        status=status,
    )


@router.get("/api-keys", name="api_keys")
def keys_page(request: Request, db: DbDep, _: KeysAdmin) -> Response:
    return _keys_page(request, db)


@router.post("/api-keys", name="api_key_create")
def key_create(
    request: Request, db: DbDep, admin: KeysAdmin, form: FormDep, lists: ListsDep
) -> Response:
    data, errors = parse_create(form, lists)
    if data is not None:
        try:
            created = api_keys.create(db, data, actor=_actor(admin))
        except AppError as exc:
            db.rollback()
            errors = forms.app_errors(exc)
        else:
            flash(request, f"The key “{created.name}” was created. {SHOWN_ONCE}")
            return _keys_page(request, db, created=created)
    return _keys_page(request, db, errors=errors, values=dict(form), status=422)


@router.post("/api-keys/{key_id}/enabled", name="api_key_enabled")
def key_enabled(
    request: Request, db: DbDep, admin: KeysAdmin, form: FormDep, key_id: int
) -> Response:
    enabled = forms.checked(form, "enabled")
    key = api_keys.set_enabled(db, key_id, enabled=enabled, actor=_actor(admin))
    flash(request, f"The key “{key.name}” is now {'enabled' if enabled else 'disabled'}.")
    return RedirectResponse(request.url_for("api_keys"), 303)


@router.post("/api-keys/{key_id}/rotate", name="api_key_rotate")
def key_rotate(request: Request, db: DbDep, admin: KeysAdmin, key_id: int) -> Response:
    rotated = api_keys.rotate(db, key_id, ApiKeyRotate(), actor=_actor(admin))
    flash(
        request,
        f"A new key “{rotated.name}” replaces {rotated.old_key.prefix}…: copy it now. The old "
        "key keeps working until you disable it.",
    )
    return _keys_page(request, db, created=rotated)


# ---- users ---------------------------------------------------------------------------------
@router.get("/users", name="users")
def users_page(request: Request, db: DbDep, _: UsersAdmin, cursor: str | None = None) -> Response:
    rows, next_cursor = users.list_page(db, cursor=cursor, limit=PAGE_SIZE)
    return render(
        request,
        "crm/users.html",
        {"title": "Users", "active": "users", "users": rows, "errors": {}, "values": {}}
        | pager(request, next_cursor),
    )


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
    rows, next_cursor = users.list_page(db, cursor=None, limit=PAGE_SIZE)
    shown = {k: v for k, v in values.items() if k != "password"}
    return render(
        request,
        "crm/users.html",
        {"title": "Users", "active": "users", "users": rows, "errors": errors, "values": shown}
        | pager(request, next_cursor),
        status_code=422,
    )


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
        actor=f"{admin.email} (web)",
    )
    flash(request, "The settings were saved.")
    return RedirectResponse(request.url_for("crm_settings"), 303)
