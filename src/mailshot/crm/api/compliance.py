"""Routes of the CRM's compliance resource (to be filled in)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["compliance"])
