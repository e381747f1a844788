"""The CRM's web pages, served by the CRM's own process under ``/crm/...``.

Pages call the CRM's service functions directly (never the JSON API over HTTP) and import
only CRM modules and the shared page plumbing in :mod:`mailshot.core.webui`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse

from mailshot.core.settings import Settings
from mailshot.core.webui.pages import UiPart, make_templates
from mailshot.core.webui.setup import install
from mailshot.crm.models import LoginFailure, User, WebSession
from mailshot.crm.ui import admin, campaigns, lists, mailshots, people, sync_pages, template_pages
from mailshot.crm.ui.common import NAV, integration_banner


def build_pages() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/", name="crm_home")
    def home(request: Request) -> RedirectResponse:
        return RedirectResponse(request.url_for("mailshots"), status_code=303)

    for module in (mailshots, people, lists, campaigns, template_pages, sync_pages, admin):
        router.include_router(module.router)
    return router


def install_pages(app: FastAPI, settings: Settings) -> None:
    """Serve the CRM's pages (and their static files) on the CRM app."""
    part = UiPart(
        key="crm",
        title="CRM",
        home_route="crm_home",
        user_model=User,
        session_model=WebSession,
        failure_model=LoginFailure,
        templates=make_templates("mailshot.crm.ui"),
        nav=NAV,
        context_hook=integration_banner,
    )
    install(app, settings, part, build_pages())
