"""Schemas of Integrated Campaigns: the upsert body, the campaign as the API shows it, the
finalize request and its answer, and the API's limits."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import Count


class IntegratedCampaignPut(BaseModel):
    """Create or update the campaign of one CRM mailshot for one snapshot (sync job).

    Fields are checked against ``GET /limits`` by the service, which answers each problem
    with its own code (``CAMPAIGN_NAME_TOO_LONG`` ...). Unknown fields are ignored.
    """

    model_config = ConfigDict(extra="ignore")

    snapshot: Count = Field(description="The CRM snapshot (sync job id) being sent.")
    crm_mailshot_uid: UUID = Field(
        description="The CRM mailshot's uid. The campaign is bound to the uid that created "
        "it: a PUT for the same CRM mailshot id with another uid is refused "
        "(CAMPAIGN_OF_ANOTHER_MAILSHOT)."
    )
    name: str | None = None
    subject: str | None = None
    from_name: str | None = None
    from_address: str | None = None
    reply_to: str | None = None
    html: str | None = None
    text: str | None = None
    campaign_type: str | None = Field(default=None, max_length=32)
    start_date: date | None = None
    end_date: date | None = None


class CampaignSummary(BaseModel):
    """A campaign in a list: everything but its content."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    crm_mailshot_id: int | None
    crm_mailshot_uid: UUID | None
    name: str
    campaign_type: str
    subject: str
    from_name: str
    from_address: str
    reply_to: str | None
    start_date: date | None
    end_date: date | None
    status: str
    current_snapshot: int | None
    finalised_snapshot: int | None
    audience_count: int
    suppressed_count: int
    duplicate_count: int
    finalised_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CampaignPublic(CampaignSummary):
    """A campaign with its content."""

    html: str | None
    text: str | None


class FinalizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snapshot: Count
    expected: Count = Field(
        description="How many recipient rows the CRM sent for this snapshot (its total).",
    )


class FinalizeResult(BaseModel):
    """The finalised audience's counts. ``received = audience_count + duplicate_count``."""

    id: int
    crm_mailshot_id: int
    snapshot: int
    status: str
    received: int
    audience_count: int
    suppressed_count: int
    duplicate_count: int
    finalised_at: datetime


class CampaignLimits(BaseModel):
    name_max_length: int
    subject_max_length: int
    from_name_max_length: int
    from_address_max_length: int
    required: list[str]


class RecipientLimits(BaseModel):
    max_rows_per_request: int


class Limits(BaseModel):
    """What the ESP accepts; the CRM checks a mailshot against this before syncing."""

    campaign: CampaignLimits
    recipients: RecipientLimits
