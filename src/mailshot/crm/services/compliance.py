"""Compliance (consent) records of people, and the CRM-wide settings (GDPR mode).

A record is *in force* when it is active, not revoked and not expired; with GDPR mode on,
only people with a record in force are in an audience. Every change of a record or of the
settings is written to the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import apply_update, get_or_404, upsert
from mailshot.core.web.paging import keyset_page
from mailshot.crm.models import ComplianceRecord, CrmSetting, Person
from mailshot.crm.schemas.compliance import (
    ComplianceCreate,
    CompliancePublic,
    ComplianceUpdate,
    CrmSettingsPublic,
    CrmSettingsUpdate,
)
from mailshot.crm.services.common import audit

GDPR_MODE = "gdpr_mode"


def in_force(record: ComplianceRecord, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return (
        record.active
        and record.revoked_at is None
        and (record.expires_at is None or record.expires_at > now)
    )


def public(record: ComplianceRecord) -> CompliancePublic:
    fields: dict[str, Any] = {
        name: getattr(record, name) for name in CompliancePublic.model_fields if name != "in_force"
    }
    return CompliancePublic(**fields, in_force=in_force(record))


def _snapshot(record: ComplianceRecord) -> dict[str, Any]:
    return public(record).model_dump(
        mode="json", include={"basis", "active", "expires_at", "revoked_at", "source"}
    )


def create(
    session: Session, person_id: int, data: ComplianceCreate, *, actor: str
) -> ComplianceRecord:
    get_or_404(session, Person, person_id, "person")
    record = ComplianceRecord(person_id=person_id, **data.model_dump())
    session.add(record)
    session.flush()
    audit(
        session,
        actor,
        "compliance.create",
        "compliance_record",
        record.id,
        {
            "person_id": person_id,
            **_snapshot(record),
        },
    )
    session.commit()
    return record


def get(session: Session, record_id: int) -> ComplianceRecord:
    return get_or_404(session, ComplianceRecord, record_id, "compliance record")


def update(
    session: Session, record_id: int, patch: ComplianceUpdate, *, actor: str
) -> ComplianceRecord:
    record = get(session, record_id)
    changed = apply_update(record, patch)
    if changed:
        audit(
            session,
            actor,
            "compliance.update",
            "compliance_record",
            record.id,
            {
                "person_id": record.person_id,
                "changed": sorted(changed),
                **_snapshot(record),
            },
        )
    session.commit()
    return record


def delete(session: Session, record_id: int, *, actor: str) -> None:
    record = get(session, record_id)
    detail = {"person_id": record.person_id, **_snapshot(record)}
    session.delete(record)
    audit(session, actor, "compliance.delete", "compliance_record", record_id, detail)
    session.commit()


def list_page(
    session: Session, person_id: int, *, cursor: str | None, limit: int
) -> tuple[list[ComplianceRecord], str | None]:
    get_or_404(session, Person, person_id, "person")
    query = select(ComplianceRecord).where(ComplianceRecord.person_id == person_id)
    return keyset_page(session, query, ComplianceRecord.id, cursor=cursor, limit=limit)


# ---- CRM-wide settings --------------------------------------------------------------------
def gdpr_mode(session: Session) -> bool:
    value = session.scalar(select(CrmSetting.value).where(CrmSetting.key == GDPR_MODE))
    return value == "true"


def get_settings(session: Session) -> CrmSettingsPublic:
    return CrmSettingsPublic(gdpr_mode=gdpr_mode(session))


def put_settings(session: Session, data: CrmSettingsUpdate, *, actor: str) -> CrmSettingsPublic:
    before = gdpr_mode(session)
    if before != data.gdpr_mode:
        table = CrmSetting.__table__
        stmt = upsert(session, CrmSetting).values(
            key=GDPR_MODE, value="true" if data.gdpr_mode else "false"
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.key], set_={"value": stmt.excluded.value}
            )
        )
        audit(
            session,
            actor,
            "settings.update",
            "crm_settings",
            GDPR_MODE,
            {"gdpr_mode": data.gdpr_mode},
        )
    session.commit()
    return CrmSettingsPublic(gdpr_mode=data.gdpr_mode)
