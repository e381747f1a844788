"""Schemas of compliance (consent) records and of the CRM-wide settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from mailshot.core.web.types import refuse_null
from mailshot.crm.schemas.common import StrictModel

#: A timestamp with a timezone (naive ones are refused), kept in UTC.
Moment = Annotated[AwareDatetime, AfterValidator(lambda v: v.astimezone(UTC))]


class ComplianceCreate(StrictModel):
    basis: str = Field(default="consent", min_length=1, max_length=50)
    active: bool = True
    given_at: Moment | None = None
    expires_at: Moment | None = None
    revoked_at: Moment | None = None
    source: str | None = Field(default=None, max_length=255)
    notes: str | None = None


class ComplianceUpdate(StrictModel):
    basis: str | None = Field(default=None, min_length=1, max_length=50)
    active: bool | None = None
    given_at: Moment | None = None
    expires_at: Moment | None = None
    revoked_at: Moment | None = None
    source: str | None = Field(default=None, max_length=255)
    notes: str | None = None

    _not_null = refuse_null("basis", "active")


class CompliancePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: int
    basis: str
    active: bool
    given_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    source: str | None
    notes: str | None
    in_force: bool = Field(
        description="Active, not revoked and not expired now: what GDPR mode counts as consent."
    )
    created_at: datetime
    updated_at: datetime


class CrmSettingsPublic(BaseModel):
    gdpr_mode: bool = Field(
        description="When on, people without a compliance record in force are left out of "
        "every mailshot's audience (reason no_consent)."
    )


class CrmSettingsUpdate(StrictModel):
    gdpr_mode: bool
