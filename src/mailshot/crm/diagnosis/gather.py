"""Gathering the facts a diagnosis judges: read-only queries, each an aggregate or bounded
by a small limit (no work per recipient, except counting the audience of a mailshot that
has no snapshot yet, which is one grouped query)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailshot.contracts.states import JobState
from mailshot.core.db.sqlhelpers import get_or_404
from mailshot.core.errors import AppError
from mailshot.crm.diagnosis.facts import (
    AudienceFacts,
    IntegrationFacts,
    KeyFacts,
    MailshotFacts,
    RateSample,
    RefusalFacts,
)
from mailshot.crm.models import ApiKey, KeyRefusalRecord, Mailshot, User
from mailshot.crm.services import audience as audience_service
from mailshot.crm.services import esp_limits
from mailshot.crm.sync import integration, preflight, progress
from mailshot.crm.sync.states import JOB_ACTIVE
from mailshot.crm.sync.tables import current_time, exclusions, jobs, mailshots

#: The bridge's own calls: a refusal on one of these is the bridge's, whatever its key.
BRIDGE_PATHS = ("/sync/lease", "/integration/heartbeat", "/integration/esp-limits")
#: Recent completed syncs the rate is measured over.
RATE_SAMPLES = 20


def _prefix(public_id: str) -> str:
    return f"mscrm_{public_id}_"


def integration_facts(session: Session, now: datetime | None = None) -> IntegrationFacts:
    at = current_time(session, now)
    rows = session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(User.role == "integration")
        .order_by(ApiKey.id)
        .limit(100)
    ).all()
    keys = [
        KeyFacts(
            id=k.id,
            name=k.name,
            prefix=_prefix(k.public_id),
            enabled=k.enabled,
            valid_from=k.valid_from,
            until=k.until,
            user_email=u.email,
            user_enabled=u.enabled,
            last_used_at=k.last_used_at,
            created_at=k.created_at,
        )
        for k, u in rows
    ]
    ids = [k.id for k in keys]
    prefixes = [k.prefix for k in keys]
    r = KeyRefusalRecord
    conditions = [r.path.like(f"%{p}") for p in BRIDGE_PATHS]
    if ids:
        conditions += [r.api_key_id.in_(ids), r.key_prefix.in_(prefixes)]
    refusals = [
        RefusalFacts(at=x.at, key_prefix=x.key_prefix, reason=x.reason, path=x.path)
        for x in session.scalars(select(r).where(or_(*conditions)).order_by(r.at.desc()).limit(5))
    ]
    stored = esp_limits.load(session)
    since = at - timedelta(hours=24)
    failed = session.execute(
        select(func.count())
        .select_from(jobs)
        .where(jobs.c.state == JobState.FAILED, jobs.c.finished_at >= since)
    ).scalar_one()
    latest = session.execute(
        select(jobs, mailshots.c.name.label("mailshot_name"))
        .join(mailshots, mailshots.c.id == jobs.c.mailshot_id)
        .where(jobs.c.state == JobState.FAILED, jobs.c.finished_at >= since)
        .order_by(jobs.c.finished_at.desc())
        .limit(1)
    ).first()
    active = session.execute(
        select(func.count()).select_from(jobs).where(jobs.c.state.in_(JOB_ACTIVE))
    ).scalar_one()
    return IntegrationFacts(
        now=at,
        keys=keys,
        refusals=refusals,
        view=integration.integration(session, at, limit=50),
        limits_read_at=stored.read_at if stored else None,
        limits_known=stored is not None,
        failed_24h=int(failed),
        latest_failure=(
            {
                "name": latest.mailshot_name,
                "code": latest.last_error_code or "?",
                "message": latest.last_error_message or "",
                "mailshot_id": str(latest.mailshot_id),
            }
            if latest is not None
            else None
        ),
        active_jobs=int(active),
    )


def _audience(session: Session, mailshot: Mailshot, job_id: int | None) -> AudienceFacts:
    job = (
        session.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if job_id is not None
        else None
    )
    if job is not None and job.recipients_total is not None:
        by_reason = session.execute(
            select(exclusions.c.reason, func.count())
            .where(exclusions.c.job_id == job.id)
            .group_by(exclusions.c.reason)
        ).all()
        return AudienceFacts(
            included=int(job.recipients_total),
            excluded={str(k): int(v) for k, v in by_reason},
            from_snapshot=True,
        )
    try:
        counts = audience_service.recount(session, mailshot)
    except AppError as err:
        return AudienceFacts(error_code=err.code, error_message=err.message, error_fix=err.fix)
    return AudienceFacts(
        included=counts.included,
        excluded={k: v for k, v in counts.excluded.items() if v},
    )


def _ahead(session: Session, job_id: int | None) -> tuple[int, int]:
    """Recipients still to write, and syncs not yet sized, of active jobs served first."""
    if job_id is None:
        return 0, 0
    me = session.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if me is None or me.state not in JOB_ACTIVE:
        return 0, 0
    before = or_(
        jobs.c.units_leased < me.units_leased,
        (jobs.c.units_leased == me.units_leased) & (jobs.c.id < me.id),
    )
    remaining = func.coalesce(jobs.c.recipients_total - jobs.c.recipients_written, 0)
    total, unsized = session.execute(
        select(
            func.coalesce(func.sum(remaining), 0),
            func.count().filter(jobs.c.recipients_total.is_(None)),
        ).where(jobs.c.state.in_(JOB_ACTIVE), before)
    ).one()
    return int(total or 0), int(unsized or 0)


def _rate_samples(session: Session) -> list[RateSample]:
    rows = session.execute(
        select(jobs.c.recipients_written, jobs.c.running_at, jobs.c.finished_at)
        .where(jobs.c.state == JobState.COMPLETED, jobs.c.running_at.is_not(None))
        .order_by(jobs.c.finished_at.desc())
        .limit(RATE_SAMPLES)
    ).all()
    return [
        RateSample(recipients=int(n), seconds=(end - start).total_seconds())
        for n, start, end in rows
        if start is not None and end is not None
    ]


def mailshot_facts(
    session: Session, mailshot_id: int, now: datetime | None = None
) -> MailshotFacts:
    at = current_time(session, now)
    mailshot = get_or_404(session, Mailshot, mailshot_id, "mailshot")
    status = progress.mailshot_status(session, mailshot_id, at)
    checked = preflight.run(session, mailshot, probe=False)
    ahead, unsized = _ahead(session, status.job_id)
    return MailshotFacts(
        mailshot_id=mailshot.id,
        name=mailshot.name,
        status=status,
        problems=[p for p in checked.problems],
        warnings=list(checked.warnings),
        audience=_audience(session, mailshot, status.job_id),
        ahead_remaining=ahead,
        ahead_unsized=unsized,
        rate_samples=_rate_samples(session),
    )
