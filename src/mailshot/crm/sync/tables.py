"""The sync queue's tables as SQLAlchemy Core ``Table`` objects, for the set-based
statements of the queue (no ORM objects on the hot paths), and the clock seam.

Lock order, on PostgreSQL: every transaction that changes several of these rows takes
``sync_units`` rows first, then the ``sync_jobs`` row, then the ``mailshots`` row, so two
queue transactions can never wait for each other in a cycle. (SQLite has one writer at a
time, so the order does not matter there.)
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from mailshot.core.db.engine import is_sqlite
from mailshot.crm.models import Mailshot, SyncExclusion, SyncJob, SyncRecipient, SyncUnit
from mailshot.crm.models.sync import IntegrationStatus, SyncLeaseLog
from mailshot.queue import QueueTables
from mailshot.queue import current_time as current_time  # the clock seam, re-exported

QUEUE_TABLES = QueueTables.of(SyncJob, SyncUnit, SyncLeaseLog)
jobs, units, lease_log = QUEUE_TABLES.jobs, QUEUE_TABLES.units, QUEUE_TABLES.lease_log
recipients = cast(Table, SyncRecipient.__table__)
exclusions = cast(Table, SyncExclusion.__table__)
mailshots = cast(Table, Mailshot.__table__)
workers = cast(Table, IntegrationStatus.__table__)


def is_postgres(session: Session) -> bool:
    return not is_sqlite(session)
