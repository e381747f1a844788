"""Routes of one compliance (consent) record: ``/compliance-records/{id}``. A person's
records are listed and created under ``/people/{id}/compliance-records``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.compliance import CompliancePublic, ComplianceUpdate
from mailshot.crm.services import compliance as service

router = APIRouter(prefix="/compliance-records", tags=["compliance"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Writer = Annotated[Principal, Depends(scoped(scopes.MARKETING_WRITE, "change marketing data"))]


@router.get("/{record_id}")
def get_compliance_record(session: SessionDep, _: Reader, record_id: Id) -> CompliancePublic:
    return service.public(service.get(session, record_id))


@router.patch("/{record_id}")
def update_compliance_record(
    session: SessionDep, who: Writer, record_id: Id, body: ComplianceUpdate
) -> CompliancePublic:
    return service.public(service.update(session, record_id, body, actor=who.actor))


@router.delete("/{record_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_compliance_record(session: SessionDep, who: Writer, record_id: Id) -> None:
    service.delete(session, record_id, actor=who.actor)
