"""The CRM's JSON API, mounted at ``/crm/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from mailshot.crm.api import organisations


def build_router() -> APIRouter:
    router = APIRouter()
    router.include_router(organisations.router)
    return router
