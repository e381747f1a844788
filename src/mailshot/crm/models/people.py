"""People, organisations, compliance (consent) records and CRM-wide settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.core.db.engine import IdType
from mailshot.crm.models.base import Base, IdMixin, TimestampMixin


class Organisation(IdMixin, TimestampMixin, Base):
    __tablename__ = "organisations"

    name: Mapped[str] = mapped_column(String(255))
    website: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(100))


class Person(IdMixin, TimestampMixin, Base):
    """A person. ``email_normalised`` and ``email_status`` are computed by the service on
    every write, so audience rules can be plain set-based SQL."""

    __tablename__ = "people"

    first_name: Mapped[str] = mapped_column(String(255), default="")
    last_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    #: Lower-cased, trimmed address (also for an invalid one); None when there is none.
    email_normalised: Mapped[str | None] = mapped_column(String(320))
    #: 'ok', 'missing' or 'invalid' (syntax), decided at write time with email-validator.
    email_status: Mapped[str] = mapped_column(String(16), default="missing")
    organisation_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("organisations.id", ondelete="SET NULL")
    )
    country: Mapped[str | None] = mapped_column(String(100))
    job_title: Mapped[str | None] = mapped_column(String(255))
    #: The "No Email" opt-out: blocks all marketing email whatever the subscriptions.
    no_email: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_people_email_normalised", "email_normalised"),
        Index("ix_people_organisation_id", "organisation_id"),
    )


class ComplianceRecord(IdMixin, TimestampMixin, Base):
    """Consent for marketing email. With GDPR mode on, only people with an active record
    (not revoked, not expired) are contacted."""

    __tablename__ = "compliance_records"

    person_id: Mapped[int] = mapped_column(IdType, ForeignKey("people.id", ondelete="CASCADE"))
    basis: Mapped[str] = mapped_column(String(50), default="consent")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    given_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    source: Mapped[str | None] = mapped_column(String(255))
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_compliance_records_person_id", "person_id"),)


class CrmSetting(Base):
    """CRM-wide settings as key/value rows (for example ``gdpr_mode``)."""

    __tablename__ = "crm_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
