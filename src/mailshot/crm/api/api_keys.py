"""Routes of the CRM's API keys and refused key uses (scope ``admin``): the routes both
parts serve (:mod:`mailshot.core.access.routes`) over :mod:`mailshot.crm.services.api_keys`, every
change audited as the caller. A token is in the answer to a create or a rotate only."""

from __future__ import annotations

from fastapi import APIRouter

from mailshot.core.access.routes import add_key_routes
from mailshot.crm import scopes
from mailshot.crm.api.deps import scoped
from mailshot.crm.services import api_keys as service

router = APIRouter(tags=["API keys"])
add_key_routes(router, service.KEYS, scoped(scopes.ADMIN, "manage API keys"))
