"""Sends of Integrated Campaigns: the send (the lease queue's job: state, schedule, the
content it was started with, cached counts per recipient state), its units (ranges of the
ledger's ids), the lease log, the per-recipient ledger and the send's tracked links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.functions import FunctionElement

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import IdType, UTCDateTime
from mailshot.esp.models.base import Base, IdMixin
from mailshot.esp.models.campaigns import ADDRESS_MAX, FROM_NAME_MAX, SUBJECT_MAX
from mailshot.queue.columns import JobColumns, LeaseLogColumns, UnitColumns


class change_clock(FunctionElement[datetime]):  # noqa: N801 (an SQL function)
    """The database's clock at this statement (not at its transaction's start), in the
    form the column type stores: PostgreSQL's ``clock_timestamp()``, SQLite's ``now``
    with microseconds."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(change_clock)
def _change_clock_pg(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "clock_timestamp()"


@compiles(change_clock, "sqlite")
def _change_clock_sqlite(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


class Send(IdMixin, JobColumns, Base):
    """One send of a campaign (a campaign is sent once; a test send is not a send)."""

    __tablename__ = "sends"

    campaign_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("campaigns.id", ondelete="CASCADE"), unique=True
    )
    #: The finalised audience snapshot the ledger was built from.
    snapshot: Mapped[int] = mapped_column(IdType)
    state: Mapped[str] = mapped_column(String(20), default="scheduled")
    scheduled_at: Mapped[datetime | None] = mapped_column()
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str | None] = mapped_column(String(255))
    paused_at: Mapped[datetime | None] = mapped_column()
    # ---- the content as it was when the send started (a later sync does not change it)
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    from_name: Mapped[str] = mapped_column(String(FROM_NAME_MAX))
    from_address: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    reply_to: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    list_name: Mapped[str] = mapped_column(String(255), default="")
    # ---- counts per recipient state (kept exact by every writer of the ledger)
    total: Mapped[int] = mapped_column(Integer, default=0)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    sending_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    deferred_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_count: Mapped[int] = mapped_column(Integer, default=0)
    in_doubt_count: Mapped[int] = mapped_column(Integer, default=0)
    cancelled_count: Mapped[int] = mapped_column(Integer, default=0)
    # ---- the feed of changed sends (``GET /sends?changed_after=``): every UPDATE of the
    # row, by any writer, moves both (SQLAlchemy's ``onupdate``, Core statements too)
    changed_at: Mapped[datetime] = mapped_column(default=change_clock(), onupdate=change_clock())
    version: Mapped[int] = mapped_column(
        Integer, default=1, onupdate=literal_column("sends.version") + 1
    )

    __table_args__ = (
        Index("ix_sends_state", "state"),
        Index("ix_sends_changed_at", "changed_at", "id"),
    )


class SendUnit(IdMixin, UnitColumns, Base):
    """A batch of a send's ledger: the rows of the send with ids first_id..last_id."""

    __tablename__ = "send_units"
    __job_table__ = "sends"

    first_id: Mapped[int] = mapped_column(IdType)
    last_id: Mapped[int] = mapped_column(IdType)

    __table_args__ = (
        Index("ix_send_units_job_id", "job_id"),
        Index("ix_send_units_state", "state", "available_at"),
    )


class SendLeaseLog(IdMixin, LeaseLogColumns, Base):
    __tablename__ = "send_lease_log"
    __job_table__ = "sends"

    __table_args__ = (
        Index("ix_send_lease_log_job_id", "job_id"),
        Index("ix_send_lease_log_unit_id", "unit_id", "lease_token"),
    )


class SendRecipient(IdMixin, Base):
    """One recipient of one send, in exactly one state. Its id is carried by the message's
    tokens, VERP Return-Path and Message-ID. No foreign key to the contact: the ledger is
    a record and outlives it."""

    __tablename__ = "send_recipients"

    send_id: Mapped[int] = mapped_column(IdType, ForeignKey("sends.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(IdType)
    crm_person_id: Mapped[int | None] = mapped_column(IdType)
    email: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    first_attempt_at: Mapped[datetime | None] = mapped_column()
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    reply_code: Mapped[int | None] = mapped_column(SmallInteger)
    enhanced_status: Mapped[str | None] = mapped_column(String(16))
    reply_text: Mapped[str | None] = mapped_column(Text)
    queue_id: Mapped[str | None] = mapped_column(String(100))
    relay: Mapped[str | None] = mapped_column(String(100))
    changed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_send_recipients_send_state", "send_id", "state", "id"),)


class SendLink(Base):
    """A tracked URL of a send, by its index (the click token carries the index)."""

    __tablename__ = "send_links"

    send_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("sends.id", ondelete="CASCADE"), primary_key=True
    )
    link_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
