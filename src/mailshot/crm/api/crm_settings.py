"""Routes of the CRM-wide settings: ``GET /settings`` (marketing:read) and ``PUT /settings``
(admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mailshot.core.access.auth import Principal
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.compliance import CrmSettingsPublic, CrmSettingsUpdate
from mailshot.crm.services import compliance as service

router = APIRouter(prefix="/settings", tags=["crm-settings"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Admin = Annotated[Principal, Depends(scoped(scopes.ADMIN, "change the CRM's settings"))]


@router.get("")
def get_settings(session: SessionDep, _: Reader) -> CrmSettingsPublic:
    return service.get_settings(session)


@router.put("")
def put_settings(session: SessionDep, who: Admin, body: CrmSettingsUpdate) -> CrmSettingsPublic:
    return service.put_settings(session, body, actor=who.actor)
