"""The ESP's composition root: ``create_esp_app(settings)``."""

from __future__ import annotations

from fastapi import FastAPI

from mailshot.esp.api import build_router
from mailshot.settings import Settings
from mailshot.webapp import make_part_app


def create_esp_app(settings: Settings) -> FastAPI:
    app = make_part_app(
        title="mailshot ESP",
        description="Contacts, Integrated Campaigns and their audiences, the integration page.",
        settings=settings,
        db_url=settings.esp_db_url(),
    )
    app.include_router(build_router(), prefix="/api/v1")
    return app
