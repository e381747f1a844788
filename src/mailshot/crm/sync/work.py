"""The bridge's side of the sync queue: lease a unit, keep it, complete or fail it. Each
call is one short transaction that commits (or raises), made by :mod:`mailshot.queue`
over :data:`~mailshot.crm.sync.kinds.SYNC_QUEUE`; this module gives it the sync's words
(the leased unit, the express lane, the settings' limits).

A unit is held by whoever has its current ``lease_token``: a worker whose lease expired
and was taken over can change nothing (409 ``SYNC_LEASE_LOST``), and a worker whose job
ended learns it at its next call (409 ``SYNC_JOB_ENDED``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from mailshot import queue as lease_queue
from mailshot.contracts.units import UnitPublic
from mailshot.core.errors import AppError
from mailshot.crm.sync.kinds import ONE_CHUNK_SYNCS, SYNC_QUEUE, Report
from mailshot.queue import DEFAULT_POLICY, Fault, RetryPolicy

UnitOutcome = lease_queue.Outcome


def leased_unit(lease: lease_queue.Lease) -> UnitPublic:
    """The claimed unit as the CRM hands it to the worker."""
    unit, job = lease.unit, lease.job
    return UnitPublic(
        unit_id=lease.unit_id,
        job_id=lease.job_id,
        mailshot_id=job.mailshot_id,
        kind=lease.kind,
        chunk_no=unit.chunk_no,
        first_seq=unit.first_seq,
        last_seq=unit.last_seq,
        lease_token=lease.token,
        lease_expires_at=lease.expires_at,
        lease_seconds=lease.lease_seconds,
        attempt=lease.attempt,
        takeover=lease.takeover,
        esp_campaign_id=job.esp_campaign_id,
        recipients_total=job.recipients_total,
        chunks_total=job.chunks_total,
    )


def raise_why(session: Session, unit_id: int) -> NoReturn:
    """Explain why a call about ``unit_id`` changed nothing: gone, job ended, or lease lost."""
    lease_queue.raise_why(SYNC_QUEUE, session, unit_id)


def has_due_unit(session: Session, *, small_only: bool = False) -> bool:
    """Whether a unit is due for :func:`lease`, read without locking anything."""
    return lease_queue.is_due(SYNC_QUEUE, session, lane=ONE_CHUNK_SYNCS if small_only else None)


def lease(
    session: Session,
    *,
    worker_id: str,
    lease_seconds: float,
    max_takeovers: int,
    small_only: bool = False,
    now: datetime | None = None,
) -> UnitPublic | None:
    """Claim the next unit of work for ``worker_id``, or None when there is none; with
    ``small_only`` (the express lane), only a chunk or finalize unit of a one-chunk sync."""
    claimed = lease_queue.claim(
        SYNC_QUEUE,
        session,
        worker_id=worker_id,
        lease_seconds=lease_seconds,
        max_takeovers=max_takeovers,
        lane=ONE_CHUNK_SYNCS if small_only else None,
        now=now,
    )
    return None if claimed is None else leased_unit(claimed)


def heartbeat(
    session: Session,
    unit_id: int,
    token: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> datetime:
    """Extend the lease of ``unit_id`` held with ``token``; commit; return the new expiry."""
    return lease_queue.heartbeat(
        SYNC_QUEUE, session, unit_id, token, lease_seconds=lease_seconds, now=now
    )


def complete(
    session: Session,
    unit_id: int,
    token: str,
    *,
    recipients_written: int | None = None,
    esp_campaign_id: str | None = None,
    result: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> UnitOutcome:
    """Record that the unit's work is done; commit. Repeating it with the same token
    changes nothing; with a lost lease it raises and changes nothing."""
    return lease_queue.complete(
        SYNC_QUEUE,
        session,
        unit_id,
        token,
        report=Report(recipients_written, esp_campaign_id, result),
        unit_values={"recipients_written": recipients_written or 0},
        now=now,
    )


def fail(
    session: Session,
    unit_id: int,
    token: str,
    *,
    permanent: bool,
    code: str,
    message: str,
    fix: str | None = None,
    retry_after_seconds: float | None = None,
    counts_as_attempt: bool = True,
    max_attempts: int,
    policy: RetryPolicy = DEFAULT_POLICY,
    now: datetime | None = None,
) -> UnitOutcome:
    """Record a failed attempt at a unit; commit. Permanent: its job fails with the reason.
    Transient: the unit is retried after a backoff, until ``max_attempts``."""
    return lease_queue.fail(
        SYNC_QUEUE,
        session,
        unit_id,
        token,
        fault=Fault(code, message, fix),
        permanent=permanent,
        policy=replace(policy, max_attempts=max_attempts),
        retry_after_seconds=retry_after_seconds,
        counts_as_attempt=counts_as_attempt,
        now=now,
    )


def fail_held_unit(
    session: Session, unit_id: int, token: str, err: AppError, now: datetime
) -> None:
    """Fail the job of a unit held with ``token`` because of ``err``; commit."""
    lease_queue.fail_job(SYNC_QUEUE, session, unit_id, token, Fault.of(err), now)
