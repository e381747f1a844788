"""Route of the ESP's limits: what it accepts, read by the bridge and the CRM's preflight."""

from __future__ import annotations

from fastapi import APIRouter

from mailshot.contracts.limits import Limits
from mailshot.esp.api.deps import PrincipalDep
from mailshot.esp.services import campaigns as service

router = APIRouter(tags=["limits"])


@router.get("/limits")
def get_limits(_: PrincipalDep) -> Limits:
    """What the ESP accepts: field lengths of a campaign, required fields (``content`` means
    HTML or text) and the most recipient rows per request. Any valid key may read it."""
    return service.limits()
