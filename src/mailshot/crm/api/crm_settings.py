"""Routes of the CRM's crm settings resource (to be filled in)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["crm-settings"])
