"""The ESP's pages: Integrated Campaigns (list with their send states, and one campaign
with its audience counts, recipients and Send panel: :mod:`.send_pages`), the integration
page with pause and resume for administrators, and API keys (administrators only).
Everything goes through the ESP's services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from mailshot.core.db.engine import read_only
from mailshot.core.webui.auth import UserDep, admin_only, page_router
from mailshot.core.webui.keys import KeyRoutes, add_key_routes
from mailshot.core.webui.pages import DbDep, PageUser, flash, render
from mailshot.core.webui.paging import pager
from mailshot.esp.models.campaigns import CampaignStatus
from mailshot.esp.scopes import ALL_SCOPES
from mailshot.esp.services import access, audience, campaigns, integration, sends
from mailshot.esp.ui import send_pages

router = page_router()
IntegrationAdmin = Annotated[PageUser, admin_only("pause or resume the integration")]
PAGE_SIZE = 50
STATUSES = tuple((str(s), s.capitalize()) for s in CampaignStatus)


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
            "send_states": sends.states_of(db, [c.id for c in rows]),
            "status": status or "",
            "statuses": STATUSES,
        }
        | pager(request, next_cursor),
    )


@router.get("/campaigns/{campaign_id}", name="esp_campaign")
def campaign_page(
    request: Request, db: DbDep, user: UserDep, campaign_id: int, cursor: str | None = None
) -> Response:
    sends.settle_campaign(request.app.state.sessions, campaign_id)
    c = campaigns.get(db, campaign_id)
    recipients, next_cursor = audience.list_recipients(
        db, campaign_id, cursor=cursor, limit=PAGE_SIZE
    )
    return render(
        request,
        "esp/campaign.html",
        {"title": c.name, "active": "esp_campaigns", "c": c, "recipients": recipients}
        | send_pages.panel(request, db, c, user)
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
    integration.set_paused(db, paused=True, actor=admin.actor)
    flash(request, "The integration is paused: the CRM's syncs wait until it is resumed.", "info")
    return RedirectResponse(request.url_for("esp_integration"), 303)


@router.post("/integration/resume", name="esp_integration_resume")
def resume(request: Request, db: DbDep, admin: IntegrationAdmin) -> Response:
    integration.set_paused(db, paused=False, actor=admin.actor)
    flash(request, "The integration is running again.")
    return RedirectResponse(request.url_for("esp_integration"), 303)


add_key_routes(
    router,
    access.KEYS,
    routes=KeyRoutes(
        page="esp_api_keys",
        create="esp_api_key_create",
        enabled="esp_api_key_enabled",
        rotate="esp_api_key_rotate",
    ),
    all_scopes=ALL_SCOPES,
)
