"""Contacts, Integrated Campaigns, campaign audiences and suppressions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.db import IdType
from mailshot.esp.models.base import Base, IdMixin, TimestampMixin

#: The longest campaign name the ESP accepts, as the real ESP enforces it.
CAMPAIGN_NAME_MAX = 100


class Contact(IdMixin, TimestampMixin, Base):
    """A contact, unique by normalised email; remembers the CRM person it came from."""

    __tablename__ = "contacts"

    email: Mapped[str] = mapped_column(String(320))
    email_normalised: Mapped[str] = mapped_column(String(320), unique=True)
    first_name: Mapped[str] = mapped_column(String(255), default="")
    last_name: Mapped[str] = mapped_column(String(255), default="")
    crm_person_id: Mapped[int | None] = mapped_column(IdType)
    crm_organisation_id: Mapped[int | None] = mapped_column(IdType)
    opt_in: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (Index("ix_contacts_crm_person_id", "crm_person_id"),)


class Campaign(IdMixin, TimestampMixin, Base):
    """An Integrated Campaign, keyed by the CRM mailshot it came from."""

    __tablename__ = "campaigns"

    crm_mailshot_id: Mapped[int | None] = mapped_column(IdType, unique=True)
    name: Mapped[str] = mapped_column(String(CAMPAIGN_NAME_MAX))
    campaign_type: Mapped[str] = mapped_column(String(32), default="integrated")
    subject: Mapped[str] = mapped_column(String(255))
    from_name: Mapped[str] = mapped_column(String(255))
    from_address: Mapped[str] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    #: 'receiving' while an audience snapshot is arriving, 'ready' once finalised.
    status: Mapped[str] = mapped_column(String(16), default="receiving")
    #: The CRM snapshot (sync job id) the audience is being built from; older ones are refused.
    current_snapshot: Mapped[int | None] = mapped_column(IdType)
    #: The snapshot whose audience was last finalised.
    finalised_snapshot: Mapped[int | None] = mapped_column(IdType)
    audience_count: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    finalised_at: Mapped[datetime | None] = mapped_column()


class CampaignRecipient(Base):
    """A contact in a campaign's audience, tagged with the snapshot that last wrote it."""

    __tablename__ = "campaign_recipients"

    campaign_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    snapshot: Mapped[int] = mapped_column(IdType)
    crm_person_id: Mapped[int | None] = mapped_column(IdType)


class Suppression(TimestampMixin, Base):
    """An address the ESP will not send to: unsubscribed, or bounce-limited."""

    __tablename__ = "suppressions"

    email_normalised: Mapped[str] = mapped_column(String(320), primary_key=True)
    #: 'unsubscribed' or 'bounced'.
    reason: Mapped[str] = mapped_column(String(32))
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)
