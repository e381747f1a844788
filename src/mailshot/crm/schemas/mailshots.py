"""Schemas of the Mailshots resource and of audience counts.

The ``sync_*`` fields are read-only here: they are shown in :class:`MailshotPublic` and
written only by the sync queue. Rules that involve several fields or other rows (a
recurring mailshot needs a period, the audience fields must match the source, referenced
rows must exist) are checked by the service on the final state, so a PATCH obeys them too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mailshot.core.web.types import Id, refuse_null
from mailshot.crm.schemas.common import CheckedEmail, StrictModel
from mailshot.crm.schemas.mailshot_sends import MailshotSendPublic
from mailshot.crm.schemas.marketing_campaigns import MemberStatuses

AudienceSource = Literal["mailing_list", "marketing_campaign"]
MailshotType = Literal["static", "refresh_non_recurring", "refresh_recurring"]
MailshotStatus = Literal["draft", "ready", "sent", "closed"]
SyncTarget = Literal["esp"]

_NAME = "Up to 255 characters here; the ESP may accept fewer (checked at Synchronise)."


class MailshotCreate(StrictModel):
    name: str = Field(min_length=1, max_length=255, description=_NAME)
    description: str | None = None
    subject: str | None = Field(default=None, max_length=255)
    from_name: str | None = Field(default=None, max_length=255)
    from_address: CheckedEmail = None
    reply_to: CheckedEmail = None
    template_id: Id | None = Field(
        default=None,
        description="When html or text is empty, the template's content (and subject, if "
        "the mailshot has none) is copied in.",
    )
    html: str | None = None
    text: str | None = None
    audience_source: AudienceSource = "mailing_list"
    mailing_list_id: Id | None = None
    marketing_campaign_id: Id | None = None
    campaign_member_statuses: MemberStatuses = Field(
        default_factory=list,
        description="With a marketing campaign: the member statuses in the audience "
        "(empty = every member).",
    )
    mailshot_type: MailshotType = "static"
    refresh_period_hours: int | None = Field(
        default=None, ge=1, le=8760, description="Required for refresh_recurring."
    )
    status: MailshotStatus = "draft"
    sync_with: SyncTarget | None = Field(
        default="esp", description="The ESP to synchronise with; null = not usable."
    )


class MailshotUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=255, description=_NAME)
    description: str | None = None
    subject: str | None = Field(default=None, max_length=255)
    from_name: str | None = Field(default=None, max_length=255)
    from_address: CheckedEmail = None
    reply_to: CheckedEmail = None
    template_id: Id | None = None
    html: str | None = None
    text: str | None = None
    audience_source: AudienceSource | None = None
    mailing_list_id: Id | None = None
    marketing_campaign_id: Id | None = None
    campaign_member_statuses: MemberStatuses | None = None
    mailshot_type: MailshotType | None = None
    refresh_period_hours: int | None = Field(default=None, ge=1, le=8760)
    status: MailshotStatus | None = None
    sync_with: SyncTarget | None = None

    _not_null = refuse_null(
        "name", "audience_source", "campaign_member_statuses", "mailshot_type", "status"
    )


class MailshotPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    uid: UUID = Field(
        description="Given at creation, never changed; the ESP campaign of this mailshot is "
        "bound to it."
    )
    name: str
    description: str | None
    subject: str | None
    from_name: str | None
    from_address: str | None
    reply_to: str | None
    template_id: int | None
    html: str | None
    text: str | None
    audience_source: str
    mailing_list_id: int | None
    marketing_campaign_id: int | None
    campaign_member_statuses: list[str]
    mailshot_type: str
    refresh_period_hours: int | None
    status: str
    sync_with: str | None
    sync_state: str
    sync_job_id: int | None
    esp_campaign_id: str | None
    sync_error_code: str | None
    sync_error_message: str | None
    synced_at: datetime | None
    recipients_synced: int | None
    recipients_excluded: int | None
    send: Annotated[MailshotSendPublic | None, BeforeValidator(MailshotSendPublic.maybe)] = Field(
        default=None, description="Its send in the ESP, as last reported (null: none yet)."
    )
    created_at: datetime
    updated_at: datetime


class AudiencePublic(BaseModel):
    """Who a mailshot's audience holds now, and who it leaves out and why."""

    included: int
    excluded: dict[str, int] = Field(
        description="Reason -> count, every reason present: unsubscribed, opted_out, "
        "no_email_address, invalid_email, no_consent, duplicate_email."
    )
    total_source: int = Field(description="Members of the source: included + excluded.")
    note: str = Field(
        default="A recount applies the CRM's rules only: it cannot know which addresses the "
        "ESP suppresses (unsubscribed or bounced there). Those are counted as "
        "suppressed_at_esp when a sync is finalised (GET /mailshots/{id}/sync).",
        description="What a recount cannot know.",
    )
