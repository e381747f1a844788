"""The columns the lease queue relies on, as mixins a part declares its queue's tables
from (beside its own columns and indexes), like :mod:`mailshot.core.access.models` for users.

A unit table names its job table in ``__job_table__`` (its ``job_id`` references it); so
does a lease-log table. Recommended indexes: units on ``(state, available_at)`` and on
``job_id``; the lease log on ``job_id`` and on ``(unit_id, lease_token)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from mailshot.core.db.engine import IdType
from mailshot.queue.states import UnitState


class JobColumns:
    """A job: the work one request asked for, served as units."""

    #: One of the part's job states (its :class:`mailshot.queue.JobMoves`).
    state: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    #: Units handed out so far: the fairness key (least served first).
    units_leased: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    takeovers: Mapped[int] = mapped_column(Integer, default=0)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    #: What to do about the last error.
    last_error_fix: Mapped[str | None] = mapped_column(Text)
    next_retry_at: Mapped[datetime | None] = mapped_column()


class _OfJob:
    __job_table__: ClassVar[str]

    @declared_attr
    @classmethod
    def job_id(cls) -> Mapped[int]:
        return mapped_column(
            IdType, ForeignKey(f"{cls.__job_table__}.id", ondelete="CASCADE"), sort_order=-1
        )


class UnitColumns(_OfJob):
    """A unit of a job's work, leased by one worker at a time."""

    #: One of the part's unit kinds.
    kind: Mapped[str] = mapped_column(String(10))
    #: A :class:`mailshot.queue.UnitState`.
    state: Mapped[str] = mapped_column(String(10), default=UnitState.PENDING)
    #: Not to be leased before this time (a back-off; None = now).
    available_at: Mapped[datetime | None] = mapped_column()
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    takeovers: Mapped[int] = mapped_column(Integer, default=0)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column()


class LeaseLogColumns(_OfJob):
    """One lease of one unit: by whom, from when, and when and how it ended. Two leases
    of one unit never overlap in time."""

    unit_id: Mapped[int] = mapped_column(IdType)
    lease_token: Mapped[str] = mapped_column(String(64))
    worker_id: Mapped[str] = mapped_column(String(255))
    leased_at: Mapped[datetime] = mapped_column()
    #: A :class:`mailshot.queue.LeaseOutcome`, the state its job ended in, or None while
    #: it holds.
    outcome: Mapped[str | None] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column()
