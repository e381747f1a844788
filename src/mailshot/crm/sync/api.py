"""Routes of the sync queue: Synchronise, progress, cancel, retry, the queue, and the
bridge-facing lease / heartbeat / prepare / recipients / complete / fail (to be filled in)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["sync"])
