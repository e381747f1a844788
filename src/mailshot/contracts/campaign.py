"""The campaign's fields, once (:class:`CampaignFields`), and the messages that carry them:
the CRM's answer to a prepare unit, the ESP's upsert body and its answer, and finalize."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mailshot.core.web.types import Count


class CampaignFields(BaseModel):
    """What a campaign says and who sends it: a mailshot's fields as the ESP takes them."""

    name: str | None = None
    subject: str | None = None
    from_name: str | None = None
    from_address: str | None = None
    reply_to: str | None = None
    html: str | None = None
    text: str | None = None

    def campaign_fields(self) -> dict[str, str | None]:
        """Just the campaign's fields, by name."""
        return {name: getattr(self, name) for name in CAMPAIGN_FIELDS}


#: The names of :class:`CampaignFields`, in order.
CAMPAIGN_FIELDS: Final = tuple(CampaignFields.model_fields)


class CampaignFieldsAnswer(CampaignFields):
    """The CRM's answer to ``POST /sync/units/{id}/campaign``: what the worker upserts."""

    # Every field is in every answer (null when the mailshot has none).
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    crm_mailshot_id: int
    crm_mailshot_uid: str = Field(
        description="The mailshot's uid: the ESP binds its campaign to it (send it with the "
        "campaign's upsert)."
    )
    snapshot: int = Field(description="The snapshot id (the sync job's id) for the ESP.")
    name: str
    mailshot_type: str


class PrepareAnswer(CampaignFieldsAnswer):
    recipients_total: int
    excluded_total: int
    chunks_total: int


class IntegratedCampaignPut(CampaignFields):
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
    campaign_type: str | None = Field(default=None, max_length=32)
    start_date: date | None = None
    end_date: date | None = None

    @classmethod
    def of(cls, fields: CampaignFieldsAnswer) -> IntegratedCampaignPut:
        """The upsert of the campaign the CRM described, for its snapshot."""
        return cls(
            snapshot=fields.snapshot,
            crm_mailshot_uid=UUID(fields.crm_mailshot_uid),
            **fields.campaign_fields(),
        )


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
