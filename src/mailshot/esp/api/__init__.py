"""The ESP's JSON API, mounted at ``/esp/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter


def build_router() -> APIRouter:
    router = APIRouter()
    return router
