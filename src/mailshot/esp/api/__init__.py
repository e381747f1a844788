"""The ESP's JSON API, mounted at ``/esp/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from mailshot.esp.api import (
    access,
    campaigns,
    contacts,
    integration,
    limits,
    sends,
    suppressed,
    suppressions,
)


def build_router() -> APIRouter:
    router = APIRouter()
    for module in (
        limits,
        campaigns,
        sends,
        suppressed,
        contacts,
        suppressions,
        integration,
        access,
    ):
        router.include_router(module.router)
    return router
