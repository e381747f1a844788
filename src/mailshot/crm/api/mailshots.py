"""Routes of the CRM's mailshots resource (to be filled in)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["mailshots"])
