"""The ESP's pages: Integrated Campaigns (list, and one campaign with its audience counts
and recipients), the integration page with pause and resume for administrators, and API
keys (administrators only). Everything goes through the ESP's services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.db import read_only
from mailshot.errors import AppError
from mailshot.esp.models import EspUser
from mailshot.esp.scopes import ALL_SCOPES
from mailshot.esp.services import access, audience, campaigns, integration
from mailshot.keyadmin import SHOWN_ONCE, ApiKeyCreated, ApiKeyRotate
from mailshot.webui import forms
from mailshot.webui.auth import UserDep, admin_only, csrf_protect, form_data, form_list
from mailshot.webui.keys import REFUSALS_SHOWN, KeyRoutes, parse_create, render_keys
from mailshot.webui.pages import PageRoute, PageUser, db_session, flash, render
from mailshot.webui.paging import pager

router = APIRouter(
    route_class=PageRoute, dependencies=[Depends(csrf_protect)], include_in_schema=False
)
DbDep = Annotated[Session, Depends(db_session)]
FormDep = Annotated[dict[str, Any], Depends(form_data)]
ListsDep = Annotated[dict[str, list[str]], Depends(form_list)]
IntegrationAdmin = Annotated[PageUser, admin_only("pause or resume the integration")]
KeysAdmin = Annotated[PageUser, admin_only("manage API keys")]
PAGE_SIZE = 50
STATUSES = (("receiving", "Receiving"), ("ready", "Ready"))


def integration_banner(request: Request) -> dict[str, Any]:
    """A banner on every ESP page while the integration is paused or not running."""
    with read_only(request.app.state.sessions) as s:
        state = integration.page(s)
    if state.paused:
        return {
            "banner": {
                "kind": "bad",
                "title": "The integration is paused.",
                "message": "Campaigns from the CRM wait (nothing is lost) until it is resumed.",
                "fix": "An administrator can resume it under Integration.",
            }
        }
    if not state.running:
        return {
            "banner": {
                "kind": "warn",
                "title": "The integration is not running.",
                "message": "No bridge worker has reported in the last 60 seconds.",
                "fix": "Start one with “mailshot worker” (or “mailshot serve”).",
            }
        }
    return {}


@router.get("/campaigns", name="esp_campaigns")
def campaigns_page(
    request: Request,
    db: DbDep,
    _: UserDep,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    rows, next_cursor = campaigns.list_page(
        db, cursor=cursor, limit=PAGE_SIZE, status=status or None
    )
    return render(
        request,
        "esp/campaigns.html",
        {
            "title": "Integrated campaigns",
            "active": "esp_campaigns",
            "campaigns": rows,
            "status": status or "",
            "statuses": STATUSES,
        }
        | pager(request, next_cursor),
    )


@router.get("/campaigns/{campaign_id}", name="esp_campaign")
def campaign_page(
    request: Request, db: DbDep, _: UserDep, campaign_id: int, cursor: str | None = None
) -> Response:
    c = campaigns.get(db, campaign_id)
    recipients, next_cursor = audience.list_recipients(
        db, campaign_id, cursor=cursor, limit=PAGE_SIZE
    )
    return render(
        request,
        "esp/campaign.html",
        {"title": c.name, "active": "esp_campaigns", "c": c, "recipients": recipients}
        | pager(request, next_cursor),
        preview=bool(c.html),
    )


@router.get("/integration", name="esp_integration")
def integration_page(request: Request, db: DbDep, _: UserDep) -> Response:
    return render(
        request,
        "esp/integration.html",
        {
            "title": "Integration",
            "active": "esp_integration",
            "state": integration.page(db),
            "now": datetime.now(UTC),
        },
    )


@router.post("/integration/pause", name="esp_integration_pause")
def pause(request: Request, db: DbDep, admin: IntegrationAdmin) -> Response:
    integration.set_paused(db, paused=True, actor=f"{admin.email} (web)")
    flash(request, "The integration is paused: the CRM's syncs wait until it is resumed.", "info")
    return RedirectResponse(request.url_for("esp_integration"), 303)


@router.post("/integration/resume", name="esp_integration_resume")
def resume(request: Request, db: DbDep, admin: IntegrationAdmin) -> Response:
    integration.set_paused(db, paused=False, actor=f"{admin.email} (web)")
    flash(request, "The integration is running again.")
    return RedirectResponse(request.url_for("esp_integration"), 303)


KEY_ROUTES = KeyRoutes(
    page="esp_api_keys",
    create="esp_api_key_create",
    enabled="esp_api_key_enabled",
    rotate="esp_api_key_rotate",
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
    keys, next_cursor = access.keys_with_users_page(
        db, cursor=request.query_params.get("cursor"), limit=PAGE_SIZE
    )
    refusals, _ = access.refusals(db, cursor=None, limit=REFUSALS_SHOWN)
    users = db.execute(
        select(EspUser.id, EspUser.email, EspUser.role)
        .where(EspUser.enabled.is_(True))
        .order_by(EspUser.email)
    ).all()
    return render_keys(
        request,
        routes=KEY_ROUTES,
        keys=keys,
        refusals=refusals,
        key_users=list(users),
        all_scopes=ALL_SCOPES,
        pager=pager(request, next_cursor),
        created=created,
        errors=errors,
        values=values,
        status=status,
    )


@router.get("/api-keys", name="esp_api_keys")
def keys_page(request: Request, db: DbDep, _: KeysAdmin) -> Response:
    return _keys_page(request, db)


@router.post("/api-keys", name="esp_api_key_create")
def key_create(
    request: Request, db: DbDep, _: KeysAdmin, form: FormDep, lists: ListsDep
) -> Response:
    data, errors = parse_create(form, lists)
    if data is not None:
        try:
            created = access.create(db, data)
        except AppError as exc:
            db.rollback()
            errors = forms.app_errors(exc)
        else:
            flash(request, f"The key “{created.name}” was created. {SHOWN_ONCE}")
            return _keys_page(request, db, created=created)
    return _keys_page(request, db, errors=errors, values=dict(form), status=422)


@router.post("/api-keys/{key_id}/enabled", name="esp_api_key_enabled")
def key_enabled(request: Request, db: DbDep, _: KeysAdmin, form: FormDep, key_id: int) -> Response:
    enabled = forms.checked(form, "enabled")
    key = access.set_key_enabled(db, key_id, enabled=enabled)
    flash(request, f"The key “{key.name}” is now {'enabled' if enabled else 'disabled'}.")
    return RedirectResponse(request.url_for("esp_api_keys"), 303)


@router.post("/api-keys/{key_id}/rotate", name="esp_api_key_rotate")
def key_rotate(request: Request, db: DbDep, _: KeysAdmin, key_id: int) -> Response:
    rotated = access.rotate(db, key_id, ApiKeyRotate())
    flash(
        request,
        f"A new key “{rotated.name}” replaces {rotated.old_key.prefix}…: copy it now. The old "
        "key keeps working until you disable it.",
    )
    return _keys_page(request, db, created=rotated)
