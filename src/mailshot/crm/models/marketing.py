"""Mailing lists, marketing campaigns, templates and mailshots."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailshot.contracts.states import SyncState
from mailshot.core.db.engine import IdType
from mailshot.crm.models.base import Base, IdMixin, TimestampMixin

if TYPE_CHECKING:
    from mailshot.crm.models.sends import MailshotSend


class MailingList(IdMixin, TimestampMixin, Base):
    __tablename__ = "mailing_lists"

    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    #: 'static' (explicit members) or 'dynamic' (a saved filter over People).
    kind: Mapped[str] = mapped_column(String(16), default="static")
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class MailingListMember(TimestampMixin, Base):
    __tablename__ = "mailing_list_members"

    list_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("mailing_lists.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (Index("ix_mailing_list_members_person_id", "person_id"),)


class MarketingCampaign(IdMixin, TimestampMixin, Base):
    __tablename__ = "marketing_campaigns"

    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(50), default="Planned")
    category: Mapped[str | None] = mapped_column(String(100))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    goals: Mapped[str | None] = mapped_column(Text)
    #: The membership statuses this campaign uses, in order (e.g. Invited, Registered).
    member_statuses: Mapped[list[str]] = mapped_column(JSON, default=list)


class CampaignMember(TimestampMixin, Base):
    __tablename__ = "campaign_members"

    campaign_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("marketing_campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_campaign_members_person_id", "person_id"),)


class Template(IdMixin, TimestampMixin, Base):
    __tablename__ = "templates"

    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(255))
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)


class Mailshot(IdMixin, TimestampMixin, Base):
    """A mailshot, and the summary of where its synchronisation stands.

    The ``sync_*`` columns are written only by the sync queue service, in the same
    transaction as the queue rows they summarise.
    """

    __tablename__ = "mailshots"

    #: Given once at creation and never changed: the ESP keeps it with the campaign it
    #: made for this mailshot and refuses that campaign to a mailshot with another uid
    #: (the same id in a CRM database restored or recreated against the same ESP).
    uid: Mapped[uuid.UUID] = mapped_column(Uuid, default=uuid.uuid4, unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(255))
    from_name: Mapped[str | None] = mapped_column(String(255))
    from_address: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    template_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("templates.id", ondelete="SET NULL")
    )
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    #: 'mailing_list' or 'marketing_campaign'.
    audience_source: Mapped[str] = mapped_column(String(32), default="mailing_list")
    mailing_list_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("mailing_lists.id", ondelete="SET NULL")
    )
    marketing_campaign_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("marketing_campaigns.id", ondelete="SET NULL")
    )
    #: With a marketing campaign: the member statuses that are in the audience.
    campaign_member_statuses: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: 'static', 'refresh_non_recurring' or 'refresh_recurring'.
    mailshot_type: Mapped[str] = mapped_column(String(32), default="static")
    refresh_period_hours: Mapped[int | None] = mapped_column(Integer)
    #: 'draft', 'ready', 'sent' or 'closed'.
    status: Mapped[str] = mapped_column(String(16), default="draft")
    #: The ESP to synchronise with ('esp'); None means "created but not usable".
    sync_with: Mapped[str | None] = mapped_column(String(32), default="esp")

    # ---- sync summary (written by the sync service) -------------------------------------
    #: not_synchronised, queued, synchronising, synchronised, failed, cancelled.
    sync_state: Mapped[str] = mapped_column(String(20), default=SyncState.NOT_SYNCHRONISED)
    sync_job_id: Mapped[int | None] = mapped_column(IdType)
    esp_campaign_id: Mapped[str | None] = mapped_column(String(64))
    sync_error_code: Mapped[str | None] = mapped_column(String(64))
    sync_error_message: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[datetime | None] = mapped_column()
    recipients_synced: Mapped[int | None] = mapped_column(Integer)
    recipients_excluded: Mapped[int | None] = mapped_column(Integer)
    #: Its send in the ESP, as the bridge last reported it (None: no send yet).
    send: Mapped[MailshotSend | None] = relationship(viewonly=True)

    __table_args__ = (Index("ix_mailshots_sync_state", "sync_state"),)
