"""Refreshing audiences: the scheduler that re-synchronises Refresh Recurring mailshots.

What each mailshot type means here (every sync reads its audience from the source when its
prepare step runs, so a dynamic list is evaluated then):

- **Static**: the audience is fixed when a user synchronises; nothing refreshes it.
- **Refresh Non-recurring**: the audience is taken from the source at the time of the
  sync (not when the mailshot was made); it is not refreshed on a schedule either: each
  Synchronise refreshes it once.
- **Refresh Recurring**: after a user's first successful Synchronise, the mailshot is
  synchronised again every ``refresh_period_hours`` (counted from the request of its last
  sync), so people who joined the source join the ESP audience and people who left it
  leave (the ESP drops rows of older snapshots at finalize). It stops when the mailshot is
  ``closed``, has no sync target, its marketing campaign (if that is its source) has
  ended, or its last sync did not complete (a failed or cancelled sync shows its reason
  and waits for a user's Retry; after a successful one the cycle resumes).

Where it runs: the bridge's health loop calls ``POST /crm/api/v1/sync/refresh`` (scope
``sync:work``) every ``refresh_seconds``, and the CRM runs :func:`tick`. So refreshes
happen wherever bridge workers run (``mailshot serve`` or ``mailshot worker``), which is
also the only time a sync can progress; several workers calling it at once is safe, since
each refresh re-checks the mailshot under its lock before queueing (at most one active job
per mailshot besides).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.crm.models import MarketingCampaign
from mailshot.crm.sync import queue
from mailshot.crm.sync.states import SyncState
from mailshot.crm.sync.tables import current_time, is_postgres, jobs, mailshots

ACTOR = "refresh scheduler"


@dataclass(frozen=True)
class Refreshed:
    mailshot_id: int
    job_id: int


def _candidates(session: Session, only: int | None = None) -> Any:
    m = mailshots
    query = (
        select(
            m.c.id,
            m.c.refresh_period_hours,
            m.c.audience_source,
            m.c.marketing_campaign_id,
            jobs.c.requested_at,
        )
        .join(jobs, jobs.c.id == m.c.sync_job_id)
        .where(
            m.c.mailshot_type == "refresh_recurring",
            m.c.sync_state == SyncState.SYNCHRONISED,
            m.c.status != "closed",
            m.c.sync_with.is_not(None),
            m.c.refresh_period_hours.is_not(None),
        )
        .order_by(m.c.id)
    )
    if only is not None:
        query = query.where(m.c.id == only)
        if is_postgres(session):
            query = query.with_for_update(of=m)
    return session.execute(query).all()


def is_due(session: Session, row: Any, now: datetime) -> bool:
    """Whether a candidate's period has passed and its campaign (if any) has not ended."""
    if row.requested_at + timedelta(hours=row.refresh_period_hours) > now:
        return False
    if row.audience_source == "marketing_campaign" and row.marketing_campaign_id is not None:
        campaign = session.get(MarketingCampaign, row.marketing_campaign_id)
        if campaign is not None and campaign.end_date is not None:
            return campaign.end_date >= now.date()
    return True


def due(session: Session, now: datetime) -> list[int]:
    """The ids of the mailshots whose refresh is due at ``now`` (read only)."""
    return [row.id for row in _candidates(session) if is_due(session, row, now)]


def tick(session: Session, *, chunk_size: int, now: datetime | None = None) -> list[Refreshed]:
    """Queue a sync of every mailshot whose refresh is due; return what was queued."""
    at = current_time(session, now)
    ids = due(session, at)
    session.rollback()
    done: list[Refreshed] = []
    for mailshot_id in ids:
        # Re-checked under the mailshot's lock (SQLite: the write transaction), so two
        # schedulers never queue the same refresh twice.
        rows = _candidates(session, only=mailshot_id)
        if not rows or not is_due(session, rows[0], at):
            session.rollback()
            continue
        job_id = queue.request_sync(
            session, mailshot_id, chunk_size=chunk_size, actor=ACTOR, now=at, preflight=False
        )
        done.append(Refreshed(mailshot_id, job_id))
    return done
