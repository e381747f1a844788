"""The sync queue, as data: jobs (one per Synchronise), their leased units of work, the
audience snapshot and its exclusions, and what the CRM knows of the integration's health.

A job moves queued -> preparing -> running -> finalizing -> completed, or ends failed,
cancelled or superseded. Its work is split into units: one ``prepare`` (snapshot the
audience, create or update the ESP campaign), one ``chunk`` per slice of the snapshot, and
one ``finalize`` (drop recipients of older snapshots, check the counts). Units are leased
with an expiry; an expired lease is taken over and resumed. Every lease is also recorded in
``sync_lease_log`` (who held which unit, from when until when), which is how the claim's
exclusivity can be checked after the fact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.contracts.states import ACTIVE_JOB_STATES, JobState
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import IdType
from mailshot.crm.models.base import Base, IdMixin
from mailshot.queue.columns import JobColumns, LeaseLogColumns, UnitColumns

_ACTIVE_SQL = f"state IN ({', '.join(repr(str(s)) for s in ACTIVE_JOB_STATES)})"


class SyncJob(IdMixin, JobColumns, Base):
    __tablename__ = "sync_jobs"

    mailshot_id: Mapped[int] = mapped_column(IdType, ForeignKey("mailshots.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str | None] = mapped_column(String(255))
    #: When the prepare unit completed and chunks could start: the base of the rate.
    running_at: Mapped[datetime | None] = mapped_column()
    chunk_size: Mapped[int] = mapped_column(Integer)
    recipients_total: Mapped[int | None] = mapped_column(Integer)
    excluded_total: Mapped[int | None] = mapped_column(Integer)
    chunks_total: Mapped[int | None] = mapped_column(Integer)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    recipients_written: Mapped[int] = mapped_column(Integer, default=0)
    esp_campaign_id: Mapped[str | None] = mapped_column(String(64))
    superseded_by: Mapped[int | None] = mapped_column(IdType)
    #: The ESP's counts at the end (included, suppressed, duplicates, ...).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_sync_jobs_mailshot_id", "mailshot_id"),
        Index("ix_sync_jobs_state", "state"),
        # At most one active sync per mailshot.
        Index(
            "uq_sync_jobs_one_active_per_mailshot",
            "mailshot_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
    )


class SyncUnit(IdMixin, UnitColumns, Base):
    """A unit of a sync job: its ``kind`` is 'prepare', 'chunk' or 'finalize'; it is
    'waiting' (the finalize until every chunk is written), 'pending', 'leased', 'done',
    'failed' (the unit whose error failed its job) or 'cancelled'."""

    __tablename__ = "sync_units"
    __job_table__ = "sync_jobs"

    chunk_no: Mapped[int | None] = mapped_column(Integer)
    first_seq: Mapped[int | None] = mapped_column(Integer)
    last_seq: Mapped[int | None] = mapped_column(Integer)
    recipients_written: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_sync_units_job_id", "job_id", "kind", "chunk_no"),
        Index("ix_sync_units_state", "state", "available_at"),
    )


class SyncRecipient(Base):
    """One included recipient of one sync's snapshot, numbered 0..N-1 in ``seq``.

    On SQLite the table is clustered by its key (WITHOUT ROWID): a snapshot is written as
    one b-tree appended in order instead of a table and its key's index, and a chunk is
    read as one contiguous range instead of an index range plus a lookup per row."""

    __tablename__ = "sync_recipients"
    __table_args__ = ({"sqlite_with_rowid": False},)

    job_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("sync_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(IdType)
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(255), default="")
    last_name: Mapped[str] = mapped_column(String(255), default="")
    organisation_id: Mapped[int | None] = mapped_column(IdType)
    #: The organisation's name when the snapshot was taken (the ``{{ organisation }}``
    #: merge field); None for a person in no organisation.
    organisation: Mapped[str | None] = mapped_column(String(255))


class SyncExclusion(Base):
    """One person of a sync's source who was left out of its audience, and why (clustered
    by its key on SQLite, like :class:`SyncRecipient`)."""

    __tablename__ = "sync_exclusions"
    __table_args__ = ({"sqlite_with_rowid": False},)

    job_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("sync_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(IdType, primary_key=True)
    #: no_email_address, invalid_email, opted_out, unsubscribed, no_consent, duplicate_email.
    reason: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))


class IntegrationStatus(Base):
    """The CRM's view of one bridge worker: its last heartbeat and what it last saw."""

    __tablename__ = "integration_workers"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    host: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    active_units: Mapped[int] = mapped_column(Integer, default=0)
    #: Set when the worker said goodbye (a clean stop); cleared by its next heartbeat.
    stopped_at: Mapped[datetime | None] = mapped_column()
    # ---- what the worker last saw of the ESP (relayed, since the CRM never calls it) ----
    #: Whether its last heartbeat to the ESP got an answer (None: not reported).
    esp_reachable: Mapped[bool | None] = mapped_column(Boolean)
    #: Why not: the transport error, or the ESP's refusal of the bridge's key (code: text).
    esp_error: Mapped[str | None] = mapped_column(Text)
    #: The CRM's time of the last heartbeat that said the ESP answered.
    esp_ok_at: Mapped[datetime | None] = mapped_column()
    #: Whether the ESP's integration is paused, and since when (the ESP's clock).
    esp_paused: Mapped[bool | None] = mapped_column(Boolean)
    esp_paused_at: Mapped[datetime | None] = mapped_column()


class SyncLeaseLog(IdMixin, LeaseLogColumns, Base):
    """One lease of one unit: by whom, from when, and when it ended (completed, failed, or
    expired and taken over). Two leases of one unit never overlap in time."""

    __tablename__ = "sync_lease_log"
    __job_table__ = "sync_jobs"

    __table_args__ = (
        Index("ix_sync_lease_log_job_id", "job_id"),
        Index("ix_sync_lease_log_unit_id", "unit_id", "lease_token"),
    )
