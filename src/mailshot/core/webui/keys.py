"""The API-keys pages both parts share (the key lifecycle is the same on both sides, see
:mod:`mailshot.core.access.service`): the list with the latest refusals, the create form
with the new secret shown once, enable/disable and rotate, for administrators only. Each
part adds them to its page router with :func:`add_key_routes` over its own key services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.access.refusals import KeyRefusalPublic, flush_of
from mailshot.core.access.schemas import (
    SHOWN_ONCE,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
)
from mailshot.core.errors import AppError
from mailshot.core.webui import forms
from mailshot.core.webui.auth import FormDep, ListsDep, admin_only
from mailshot.core.webui.pages import DbDep, PageUser, flash, get_part, render
from mailshot.core.webui.paging import pager

#: The keys page shows this many of the latest refused requests.
REFUSALS_SHOWN = 10
#: Keys on one page of the list.
PAGE_SIZE = 50
KeysAdmin = Annotated[PageUser, admin_only("manage API keys")]


@dataclass(frozen=True)
class KeyRoutes:
    """Names of a part's key routes, for the shared template."""

    page: str
    create: str
    enabled: str
    rotate: str


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class KeyPagesService(Protocol):
    """A part's key services as the pages call them
    (a :class:`mailshot.core.access.service.KeyService` fits).
    ``actor`` names the administrator for a part that audits key changes."""

    def page(
        self, session: Session, *, cursor: str | None, limit: int
    ) -> tuple[list[ApiKeyPublic], str | None]: ...

    def refusals(
        self, session: Session, *, cursor: str | None, limit: int
    ) -> tuple[list[KeyRefusalPublic], str | None]: ...

    def create(
        self, session: Session, data: ApiKeyCreate, *, actor: str | None = None
    ) -> ApiKeyCreated: ...

    def set_enabled(
        self, session: Session, key_id: int, *, enabled: bool, actor: str | None = None
    ) -> _Named: ...

    def rotate(
        self, session: Session, key_id: int, body: ApiKeyRotate, *, actor: str | None = None
    ) -> ApiKeyRotated: ...


def _utc(value: str | None) -> datetime | str | None:
    """A ``datetime-local`` field read as UTC (as the page says); other text is passed on
    for the schema to refuse by name."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_create(
    form: dict[str, Any], lists: dict[str, list[str]]
) -> tuple[ApiKeyCreate | None, forms.FieldErrors]:
    ips = (forms.text(form, "permitted_ips") or "").replace(",", " ").split()
    return forms.parse(
        ApiKeyCreate,
        {
            "name": forms.text(form, "name") or "",
            "user_id": forms.integer(form, "user_id"),
            "description": forms.text(form, "description"),
            "scopes": lists.get("scopes") or None,
            "permitted_ips": ips,
            "valid_from": _utc(forms.text(form, "valid_from")),
            "until": _utc(forms.text(form, "until")),
        },
    )


def _key_users(db: Session, user_model: Any) -> list[Any]:
    """The enabled users a new key may act as: (id, email, role), by email."""
    rows = db.execute(
        select(user_model.id, user_model.email, user_model.role)
        .where(user_model.enabled.is_(True))
        .order_by(user_model.email)
    ).all()
    return list(rows)


def add_key_routes(
    router: APIRouter,
    keys: KeyPagesService,
    *,
    routes: KeyRoutes,
    all_scopes: tuple[str, ...],
) -> None:
    """Add the API-keys page (``/api-keys``) and its forms to ``router``, named as in
    ``routes``; the users a key may act as are the part's enabled users."""

    def keys_page(
        request: Request,
        db: Session,
        *,
        created: ApiKeyCreated | None = None,
        errors: forms.FieldErrors | None = None,
        values: dict[str, Any] | None = None,
        status: int = 200,
    ) -> Response:
        flush_of(request.app)  # this process's tally, before the read
        db.rollback()  # a read begun before the flush would not see it (SQLite's snapshot)
        rows, next_cursor = keys.page(
            db, cursor=request.query_params.get("cursor"), limit=PAGE_SIZE
        )
        refusals, _ = keys.refusals(db, cursor=None, limit=REFUSALS_SHOWN)
        return render(
            request,
            "webui/api_keys.html",
            {
                "title": "API keys",
                "active": routes.page,
                "routes": routes,
                "keys": rows,
                "refusals": refusals,
                "key_users": _key_users(db, get_part(request).user_model),
                "all_scopes": all_scopes,
                "created": created,
                "new_token": created.token if created else None,
                "errors": errors or {},
                "values": values or {},
            }
            | pager(request, next_cursor),
            status_code=status,
        )

    @router.get("/api-keys", name=routes.page)
    def list_keys(request: Request, db: DbDep, _: KeysAdmin) -> Response:
        return keys_page(request, db)

    @router.post("/api-keys", name=routes.create)
    def create_key(
        request: Request, db: DbDep, admin: KeysAdmin, form: FormDep, lists: ListsDep
    ) -> Response:
        data, errors = parse_create(form, lists)
        if data is not None:
            try:
                created = keys.create(db, data, actor=admin.actor)
            except AppError as exc:
                db.rollback()
                errors = forms.app_errors(exc)
            else:
                flash(request, f"The key “{created.name}” was created. {SHOWN_ONCE}")
                return keys_page(request, db, created=created)
        return keys_page(request, db, errors=errors, values=dict(form), status=422)

    @router.post("/api-keys/{key_id}/enabled", name=routes.enabled)
    def set_key_enabled(
        request: Request, db: DbDep, admin: KeysAdmin, form: FormDep, key_id: int
    ) -> Response:
        enabled = forms.checked(form, "enabled")
        key = keys.set_enabled(db, key_id, enabled=enabled, actor=admin.actor)
        flash(request, f"The key “{key.name}” is now {'enabled' if enabled else 'disabled'}.")
        return RedirectResponse(request.url_for(routes.page), 303)

    @router.post("/api-keys/{key_id}/rotate", name=routes.rotate)
    def rotate_key(request: Request, db: DbDep, admin: KeysAdmin, key_id: int) -> Response:
        try:
            rotated = keys.rotate(db, key_id, ApiKeyRotate(), actor=admin.actor)
        except AppError as exc:  # e.g. scopes its user's role no longer allows
            db.rollback()
            flash(request, f"{exc.message} {exc.fix}".strip(), "bad")
            return RedirectResponse(request.url_for(routes.page), 303)
        flash(
            request,
            f"A new key “{rotated.name}” replaces {rotated.old_key.prefix}…: copy it now. The "
            "old key keeps working until you disable it.",
        )
        return keys_page(request, db, created=rotated)
