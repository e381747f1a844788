"""The ESP's web pages, served by the ESP's own process under ``/esp/...``: Integrated
Campaigns with their audience counts and their sends, the Outbox, the integration page
("Tools > Integration > General") and API keys.

Pages call the ESP's service functions directly (never the JSON API over HTTP) and import
only ESP modules and the shared page plumbing in :mod:`mailshot.core.webui`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse

from mailshot.core.settings import Settings
from mailshot.core.webui.pages import NavItem, UiPart, make_templates
from mailshot.core.webui.setup import install
from mailshot.esp.models import EspLoginFailure, EspUser, EspWebSession
from mailshot.esp.ui import outbox, pages, send_pages

NAV = (
    NavItem("Campaigns", "esp_campaigns"),
    NavItem("Outbox", "esp_outbox"),
    NavItem("Integration", "esp_integration"),
    NavItem("API keys", "esp_api_keys", admin_only=True),
)


def build_pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/", name="esp_home")
    def home(request: Request) -> RedirectResponse:
        return RedirectResponse(request.url_for("esp_campaigns"), status_code=303)

    router.include_router(pages.router)
    router.include_router(outbox.router)
    router.include_router(send_pages.router)
    return router


def install_pages(app: FastAPI, settings: Settings) -> None:
    """Serve the ESP's pages (and their static files) on the ESP app."""
    part = UiPart(
        key="esp",
        title="ESP",
        home_route="esp_home",
        user_model=EspUser,
        session_model=EspWebSession,
        failure_model=EspLoginFailure,
        templates=make_templates("mailshot.esp.ui"),
        nav=NAV,
        context_hook=pages.integration_banner,
    )
    install(app, settings, part, build_pages())
