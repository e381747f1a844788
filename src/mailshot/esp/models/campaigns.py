"""Contacts, Integrated Campaigns, campaign audiences, duplicates seen while receiving an
audience, and suppressions (unsubscribes and bounce records)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    or_,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.core.db.engine import IdType
from mailshot.esp.models.base import Base, IdMixin, TimestampMixin

#: The longest campaign name the ESP accepts, as the real ESP enforces it.
CAMPAIGN_NAME_MAX = 100
#: Longest subject, sender name and sender address (the columns' lengths).
SUBJECT_MAX = 255
FROM_NAME_MAX = 255
ADDRESS_MAX = 320
#: A bounce record is bounce-limited (suppressed) at this many hard or soft bounces.
HARD_BOUNCE_LIMIT = 1
SOFT_BOUNCE_LIMIT = 3


class CampaignStatus(StrEnum):
    #: An audience snapshot is arriving.
    RECEIVING = "receiving"
    #: The snapshot is finalised: the campaign's audience.
    READY = "ready"


class Contact(IdMixin, TimestampMixin, Base):
    """A contact, unique by normalised email; remembers the CRM person it came from."""

    __tablename__ = "contacts"

    email: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    email_normalised: Mapped[str] = mapped_column(String(ADDRESS_MAX), unique=True)
    first_name: Mapped[str] = mapped_column(String(255), default="")
    last_name: Mapped[str] = mapped_column(String(255), default="")
    #: The name of the person's organisation in the CRM (``{{ organisation }}``).
    organisation: Mapped[str] = mapped_column(String(255), default="")
    crm_person_id: Mapped[int | None] = mapped_column(IdType)
    crm_organisation_id: Mapped[int | None] = mapped_column(IdType)
    opt_in: Mapped[bool] = mapped_column(default=True)
    # No index on crm_person_id: no query looks contacts up by it, and every chunk of a
    # sync would pay for keeping one.


class Campaign(IdMixin, TimestampMixin, Base):
    """An Integrated Campaign, keyed by the CRM mailshot it came from."""

    __tablename__ = "campaigns"

    crm_mailshot_id: Mapped[int | None] = mapped_column(IdType, unique=True)
    #: The uid of the CRM mailshot that made the campaign: only a PUT with the same uid
    #: may change it (another mailshot with the same id is refused).
    crm_mailshot_uid: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(CAMPAIGN_NAME_MAX))
    campaign_type: Mapped[str] = mapped_column(String(32), default="integrated")
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    from_name: Mapped[str] = mapped_column(String(FROM_NAME_MAX))
    from_address: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    reply_to: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.RECEIVING)
    #: The CRM snapshot (sync job id) the audience is being built from; older ones are refused.
    current_snapshot: Mapped[int | None] = mapped_column(IdType)
    #: The snapshot whose audience was last finalised.
    finalised_snapshot: Mapped[int | None] = mapped_column(IdType)
    #: Set when the snapshot changed, so rows of older snapshots may remain: finalize prunes
    #: them (and only then, so finalising a first sync never scans the audience for them).
    audience_needs_prune: Mapped[bool] = mapped_column(Boolean, default=False)
    audience_count: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    finalised_at: Mapped[datetime | None] = mapped_column()


class CampaignRecipient(Base):
    """A contact in a campaign's audience, tagged with the snapshot that last wrote it.

    On SQLite the table is clustered by its key (WITHOUT ROWID): one b-tree to write per
    recipient instead of two, and a campaign's audience is one contiguous range.
    """

    __tablename__ = "campaign_recipients"

    campaign_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    snapshot: Mapped[int] = mapped_column(IdType)
    crm_person_id: Mapped[int | None] = mapped_column(IdType)

    __table_args__ = (
        Index("ix_campaign_recipients_contact_id", "contact_id"),
        {"sqlite_with_rowid": False},
    )


class CampaignDuplicate(Base):
    """A CRM recipient row of a snapshot whose normalised email was already in that
    snapshot's audience under another row: the ESP keeps the first and records the others
    here, keyed by the CRM person, so a chunk written twice records its duplicates once."""

    __tablename__ = "campaign_duplicates"

    campaign_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    crm_person_id: Mapped[int] = mapped_column(IdType, primary_key=True)
    snapshot: Mapped[int] = mapped_column(IdType)
    email_normalised: Mapped[str] = mapped_column(String(ADDRESS_MAX))


class Suppression(IdMixin, TimestampMixin, Base):
    """An address the ESP will not send to (unsubscribed, or bounce-limited), or a bounce
    record that has not reached the limit yet. See :func:`suppressed_clause`."""

    __tablename__ = "suppressions"

    email_normalised: Mapped[str] = mapped_column(String(ADDRESS_MAX), unique=True)
    #: 'unsubscribed' or 'bounced'.
    reason: Mapped[str] = mapped_column(String(32))
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)


def suppressed_clause() -> ColumnElement[bool]:
    """SQL truth of "this suppressions row stops mail": unsubscribed, or bounce-limited."""
    return or_(
        Suppression.reason == "unsubscribed",
        Suppression.hard_bounces >= HARD_BOUNCE_LIMIT,
        Suppression.soft_bounces >= SOFT_BOUNCE_LIMIT,
    )
