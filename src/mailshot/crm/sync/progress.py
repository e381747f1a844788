"""Where a sync stands, for people: n of N, rate, ETA, queue position, the last error and
a one-sentence summary; the queue in the order it is served; one job in detail.

The arithmetic (:func:`rate_and_eta`, :func:`summary`) is pure; the rest are read-only
queries (no writes, so they never take SQLite's write lock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from mailshot.contracts.states import JobState, SyncState
from mailshot.core.db.engine import begin_read
from mailshot.core.db.sqlhelpers import get_or_404
from mailshot.core.errors import CATALOGUE, NOT_FOUND, AppError
from mailshot.crm.models import Mailshot
from mailshot.crm.sync import integration
from mailshot.crm.sync.schemas import LastError, QueueEntry, QueuePublic, SyncJobPublic, SyncStatus
from mailshot.crm.sync.states import JOB_ACTIVE
from mailshot.crm.sync.tables import current_time, jobs, mailshots, units


def rate_and_eta(
    written: int,
    total: int | None,
    running_at: datetime | None,
    end: datetime,
) -> tuple[float | None, float | None]:
    """Recipients per second since the chunks started, and seconds left at that rate."""
    if running_at is None or written <= 0:
        return None, None
    elapsed = (end - running_at).total_seconds()
    if elapsed <= 0:
        return None, None
    rate = written / elapsed
    if total is None:
        return rate, None
    return rate, max(0.0, (total - written) / rate)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def summary(status: SyncStatus, now: datetime) -> str:
    """One sentence saying where the mailshot's sync is (and, while it waits, why it is
    not moving when the integration is stopped or paused)."""
    sentence = _state_sentence(status, now)
    waiting = status.job_state in JOB_ACTIVE
    health = status.integration
    if waiting and health is not None:
        if health.paused:
            since = f" since {health.paused_at:%Y-%m-%d %H:%M} UTC" if health.paused_at else ""
            sentence += (
                f" The ESP's integration is paused{since}: it carries on when the ESP resumes it."
            )
        elif not health.running:
            sentence += " No bridge worker is running, so it will not move until one starts."
    return sentence


def _state_sentence(status: SyncStatus, now: datetime) -> str:
    state = status.state
    if status.job_state in JOB_ACTIVE and status.next_retry_at and status.next_retry_at > now:
        err = status.last_error
        why = f" ({err.code}: {err.message})" if err else ""
        wait = (status.next_retry_at - now).total_seconds()
        return f"Waiting to retry in {wait:.0f} s after a temporary error{why}."
    if state == SyncState.NOT_SYNCHRONISED:
        return "Not synchronised yet: press Synchronise to send it to the ESP."
    if state == SyncState.QUEUED or status.job_state == JobState.QUEUED:
        pos = status.queue_position
        return f"Queued, {_ordinal(pos)} in line." if pos else "Queued."
    if state == SyncState.SYNCHRONISING:
        if status.job_state == JobState.PREPARING or not status.recipients_total:
            if status.recipients_written:
                return (
                    "Preparing: taking a snapshot of the audience; "
                    f"{status.recipients_written:,} recipients are already in the ESP."
                )
            return "Preparing: taking a snapshot of the audience and creating the campaign."
        pct = 100 * status.recipients_written / status.recipients_total
        eta = f", about {status.eta_seconds:.0f} s left" if status.eta_seconds is not None else ""
        return (
            f"Synchronising: {status.recipients_written:,} of {status.recipients_total:,} "
            f"recipients ({pct:.0f}%){eta}."
        )
    if state == SyncState.SYNCHRONISED:
        suppressed = (status.excluded or {}).get("suppressed_at_esp", 0)
        also = f" ({suppressed:,} of them because the ESP suppresses their address)"
        return (
            f"Synchronised: {status.recipients_synced or 0:,} recipients are in the ESP "
            f"campaign {status.esp_campaign_id}; {status.recipients_excluded or 0:,} people "
            f"were left out{also if suppressed else ''}."
        )
    if state == SyncState.FAILED:
        err = status.last_error
        return f"Failed: {err.message}" if err else "Failed."
    if state == SyncState.CANCELLED:
        return "Cancelled: press Synchronise to start again."
    return state


def _last_error(code: str | None, message: str | None, fix: str | None) -> LastError | None:
    if not code:
        return None
    known = CATALOGUE.get(code)
    return LastError(
        code=code, message=message or "", fix=fix or (known.fix if known else None) or None
    )


def queue_position(session: Session, job: Any) -> int | None:
    """1-based place of an active job in the order units are served, else None."""
    if job.state not in JOB_ACTIVE:
        return None
    ahead = session.execute(
        select(func.count())
        .select_from(jobs)
        .where(
            jobs.c.state.in_(JOB_ACTIVE),
            or_(
                jobs.c.units_leased < job.units_leased,
                and_(jobs.c.units_leased == job.units_leased, jobs.c.id < job.id),
            ),
        )
    ).scalar_one()
    return int(ahead) + 1


def mailshot_status(session: Session, mailshot_id: int, now: datetime | None = None) -> SyncStatus:
    begin_read(session)  # a read: after a POST's commit, no turn at the write lock
    at = current_time(session, now)
    mailshot = get_or_404(session, Mailshot, mailshot_id, "mailshot")
    job = None
    if mailshot.sync_job_id is not None:
        job = session.execute(select(jobs).where(jobs.c.id == mailshot.sync_job_id)).first()
    if job is None:
        status = SyncStatus(
            mailshot_id=mailshot.id,
            job_id=None,
            state=mailshot.sync_state,
            job_state=None,
            chunks_done=0,
            chunks_total=None,
            recipients_total=None,
            recipients_written=0,
            excluded_total=None,
            rate_per_second=None,
            eta_seconds=None,
            attempts=0,
            takeovers=0,
            last_error=_last_error(mailshot.sync_error_code, mailshot.sync_error_message, None),
            next_retry_at=None,
            esp_campaign_id=mailshot.esp_campaign_id,
            queue_position=None,
            requested_at=None,
            started_at=None,
            finished_at=None,
            synced_at=mailshot.synced_at,
            recipients_synced=mailshot.recipients_synced,
            recipients_excluded=mailshot.recipients_excluded,
            summary="",
        )
    else:
        rate, eta = rate_and_eta(
            job.recipients_written, job.recipients_total, job.running_at, job.finished_at or at
        )
        status = SyncStatus(
            mailshot_id=mailshot.id,
            job_id=job.id,
            state=mailshot.sync_state,
            job_state=job.state,
            chunks_done=job.chunks_done,
            chunks_total=job.chunks_total,
            recipients_total=job.recipients_total,
            recipients_written=job.recipients_written,
            excluded_total=job.excluded_total,
            rate_per_second=rate,
            eta_seconds=eta if job.state in JOB_ACTIVE else None,
            attempts=job.attempts,
            takeovers=job.takeovers,
            last_error=_last_error(job.last_error_code, job.last_error_message, job.last_error_fix),
            next_retry_at=job.next_retry_at,
            esp_campaign_id=job.esp_campaign_id or mailshot.esp_campaign_id,
            queue_position=queue_position(session, job),
            requested_at=job.requested_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            synced_at=mailshot.synced_at,
            recipients_synced=mailshot.recipients_synced,
            recipients_excluded=mailshot.recipients_excluded,
            summary="",
        )
    if job is not None and isinstance(job.result, dict) and "included" in job.result:
        _final_counts(status, job.result)
    status.integration = integration.summary(integration.integration(session, at, limit=20))
    status.summary = summary(status, at)
    return status


def _final_counts(status: SyncStatus, result: dict[str, Any]) -> None:
    """The completed job's counts (see :mod:`mailshot.crm.sync.final_counts`)."""
    status.included = int(result["included"])
    status.excluded = {str(k): int(v) for k, v in (result.get("excluded") or {}).items()}
    status.esp_counts = dict(result.get("esp") or {})
    status.counts_agree = bool(result.get("counts_agree"))


def queue(session: Session, *, limit: int) -> QueuePublic:
    """Active jobs in the order their units are served (least served first)."""
    total = session.execute(
        select(func.count()).select_from(jobs).where(jobs.c.state.in_(JOB_ACTIVE))
    ).scalar_one()
    rows = session.execute(
        select(jobs, mailshots.c.name.label("mailshot_name"))
        .join(mailshots, mailshots.c.id == jobs.c.mailshot_id)
        .where(jobs.c.state.in_(JOB_ACTIVE))
        .order_by(jobs.c.units_leased, jobs.c.id)
        .limit(limit)
    ).all()
    items = [
        QueueEntry(
            position=n,
            job_id=r.id,
            mailshot_id=r.mailshot_id,
            mailshot_name=r.mailshot_name,
            job_state=r.state,
            chunks_done=r.chunks_done,
            chunks_total=r.chunks_total,
            recipients_total=r.recipients_total,
            recipients_written=r.recipients_written,
            attempts=r.attempts,
            takeovers=r.takeovers,
            last_error=_last_error(r.last_error_code, r.last_error_message, r.last_error_fix),
            next_retry_at=r.next_retry_at,
            requested_at=r.requested_at,
            started_at=r.started_at,
        )
        for n, r in enumerate(rows, start=1)
    ]
    return QueuePublic(items=items, total=int(total))


def job_detail(session: Session, job_id: int) -> SyncJobPublic:
    job = session.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if job is None:
        raise AppError(NOT_FOUND, what="sync job", id=job_id)
    by_state = (
        select(units.c.state, func.count()).where(units.c.job_id == job_id).group_by(units.c.state)
    )
    counts: dict[str, int] = {str(k): int(v) for k, v in session.execute(by_state).all()}
    return SyncJobPublic(
        id=job.id,
        mailshot_id=job.mailshot_id,
        state=job.state,
        requested_at=job.requested_at,
        requested_by=job.requested_by,
        started_at=job.started_at,
        running_at=job.running_at,
        finished_at=job.finished_at,
        chunk_size=job.chunk_size,
        recipients_total=job.recipients_total,
        excluded_total=job.excluded_total,
        chunks_total=job.chunks_total,
        chunks_done=job.chunks_done,
        recipients_written=job.recipients_written,
        units_leased=job.units_leased,
        attempts=job.attempts,
        takeovers=job.takeovers,
        esp_campaign_id=job.esp_campaign_id,
        last_error=_last_error(job.last_error_code, job.last_error_message, job.last_error_fix),
        next_retry_at=job.next_retry_at,
        superseded_by=job.superseded_by,
        result=job.result,
        units=counts,
    )
