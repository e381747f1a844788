"""Imports of People from CSV files: one row per run (its checkpoint and counts) and one row
per rejected line of a run.

A run commits its work batch by batch; each batch's commit also moves ``last_line`` (the
last physical line of the file whose outcome is committed) and the counts, so an
interrupted run resumes from ``last_line`` and never applies a line twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import IdType
from mailshot.crm.models.base import Base, IdMixin


class ImportState(StrEnum):
    #: Reading the file (or interrupted: resumable from ``last_line``).
    RUNNING = "running"
    COMPLETED = "completed"


class ImportRun(IdMixin, Base):
    __tablename__ = "import_runs"

    #: 'people' (the only kind today).
    kind: Mapped[str] = mapped_column(String(16), default="people")
    file_name: Mapped[str] = mapped_column(String(500))
    #: SHA-256 of the file's bytes: a resume must read the very same file.
    file_hash: Mapped[str] = mapped_column(String(64))
    file_size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: CSV column -> person field, as used by the run.
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    list_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("mailing_lists.id", ondelete="SET NULL")
    )
    actor: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default=ImportState.RUNNING)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    #: The last physical line of the file whose outcome is committed (0: none yet).
    last_line: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    added_to_list: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_import_runs_file_hash", "file_hash"),)


class ImportRejection(Base):
    """A line of an import's file that was not applied, and why."""

    __tablename__ = "import_rejections"

    run_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("import_runs.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: no_email, invalid_email, duplicate_in_file, encoding, malformed_csv, unclosed_quote,
    #: column_count, invalid_value, unknown_organisation.
    reason: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))
