"""The sync queue's tables as SQLAlchemy Core ``Table`` objects, for the set-based
statements of the queue (no ORM objects on the hot paths), and the clock seam.

Lock order, on PostgreSQL: every transaction that changes several of these rows takes
``sync_units`` rows first, then the ``sync_jobs`` row, then the ``mailshots`` row, so two
queue transactions can never wait for each other in a cycle. (SQLite has one writer at a
time, so the order does not matter there.)
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from mailshot.crm.models import Mailshot, SyncExclusion, SyncJob, SyncRecipient, SyncUnit
from mailshot.crm.models.sync import IntegrationStatus, SyncLeaseLog
from mailshot.db import db_now, is_sqlite

jobs = cast(Table, SyncJob.__table__)
units = cast(Table, SyncUnit.__table__)
recipients = cast(Table, SyncRecipient.__table__)
exclusions = cast(Table, SyncExclusion.__table__)
lease_log = cast(Table, SyncLeaseLog.__table__)
mailshots = cast(Table, Mailshot.__table__)
workers = cast(Table, IntegrationStatus.__table__)


def current_time(session: Session, now: datetime | None = None) -> datetime:
    """``now`` when a caller (a test) gives one, else the database's clock."""
    return now if now is not None else db_now(session)


def is_postgres(session: Session) -> bool:
    return not is_sqlite(session)
