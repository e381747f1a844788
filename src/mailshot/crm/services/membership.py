"""Is this person in this mailshot's audience, and if not, why? For any person.

The answer comes from the latest audience snapshot of the mailshot (the latest sync job
that took one; it is what the ESP received or is receiving): an exclusion row gives the
reason (including ``suppressed_at_esp``, recorded after the sync), a recipient row means
"in", neither means the person was not in the source when the snapshot was taken. Before
any sync the same rules are evaluated live, for this person alone: the ranking that finds
duplicates is limited to the people sharing the person's address, so the answer costs a
few index look-ups whatever the audience size. Snapshot recipients are found by bisection
on ``seq`` (numbered in person-id order), so no scan of a large snapshot either.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from mailshot.core.db.sqlhelpers import get_or_404
from mailshot.crm.models import (
    MailingList,
    Mailshot,
    MarketingCampaign,
    Person,
    SyncExclusion,
    SyncJob,
    SyncRecipient,
)
from mailshot.crm.schemas.membership import MembershipPublic
from mailshot.crm.services import audience

JOBS = cast(Table, SyncJob.__table__)
RECIPIENTS = cast(Table, SyncRecipient.__table__)
EXCLUSIONS = cast(Table, SyncExclusion.__table__)

_WHY = {
    "unsubscribed": "{who} is a member of {source} but has unsubscribed from it.",
    "opted_out": '{who} has the "No Email" opt-out set, which blocks all marketing email.',
    "no_email_address": "{who} has no email address.",
    "invalid_email": "{who}'s email address '{email}' is not a valid address.",
    "no_consent": "GDPR mode is on and {who} has no compliance record in force (active, "
    "not revoked, not expired).",
    "duplicate_email": "{who} shares the address {email} with a person of lower id in the "
    "audience, who gets the mail instead (of people sharing an address the first is kept).",
    "suppressed_at_esp": "The ESP will not send to {who}'s address {email}: it unsubscribed "
    "there, or it bounced (one hard bounce or three soft ones). The ESP reported this when "
    "it finalised the sync; the address stays in the campaign but gets no mail.",
    "not_in_source": "{who} is not {member_of}.",
}


def _source_words(session: Session, ms: Mailshot) -> tuple[str, str]:
    """('the mailing list 'X'', 'a member of the mailing list 'X'') and the like."""
    if ms.audience_source == "marketing_campaign":
        campaign = (
            session.get(MarketingCampaign, ms.marketing_campaign_id)
            if ms.marketing_campaign_id is not None
            else None
        )
        name = f"the marketing campaign '{campaign.name}'" if campaign else "its campaign"
        statuses = list(ms.campaign_member_statuses or [])
        if statuses:
            return name, f"a member of {name} with the status {' or '.join(statuses)}"
        return name, f"a member of {name}"
    ml = session.get(MailingList, ms.mailing_list_id) if ms.mailing_list_id is not None else None
    if ml is None:
        return "its mailing list", "a member of its mailing list"
    name = f"the mailing list '{ml.name}'"
    if ml.kind == "dynamic":
        return name, f"selected by the filter of the dynamic list '{ml.name}'"
    return name, f"a member of {name}"


def explain(session: Session, ms: Mailshot, person: Person, reason: str | None) -> str:
    who = f"{person.first_name} {person.last_name}".strip() or f"Person {person.id}"
    who = f"{who} (person {person.id})"
    if reason is None:
        return f"{who} is in the audience of the mailshot '{ms.name}'."
    source, member_of = _source_words(session, ms)
    template = _WHY.get(reason, "{who} is left out of the audience ({reason}).")
    return template.format(
        who=who, email=person.email, source=source, member_of=member_of, reason=reason
    )


def latest_snapshot_job(session: Session, mailshot_id: int) -> Any:
    """The latest sync job of the mailshot that took an audience snapshot, or None."""
    return session.execute(
        select(JOBS.c.id, JOBS.c.recipients_total)
        .where(JOBS.c.mailshot_id == mailshot_id, JOBS.c.recipients_total.is_not(None))
        .order_by(JOBS.c.id.desc())
        .limit(1)
    ).first()


def _in_snapshot(session: Session, job_id: int, total: int, person_id: int) -> bool:
    """Whether the snapshot's recipients hold the person: bisection on ``seq``."""
    lo, hi = 0, total - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        found = session.scalar(
            select(RECIPIENTS.c.person_id).where(
                RECIPIENTS.c.job_id == job_id, RECIPIENTS.c.seq == mid
            )
        )
        if found is None:
            return False
        if found == person_id:
            return True
        if found < person_id:
            lo = mid + 1
        else:
            hi = mid - 1
    return False


def live_reason(session: Session, ms: Mailshot, person: Person) -> str | None:
    """The person's reason by the audience rules now (None: included)."""
    p = Person.__table__
    only = p.c.id == person.id
    if person.email_normalised is not None:
        only = or_(only, p.c.email_normalised == person.email_normalised)
    _, ranked = audience._classified(session, ms, only)
    row = session.execute(
        select(ranked.c.reason, ranked.c.rn).where(ranked.c.person_id == person.id)
    ).first()
    if row is None:
        return "not_in_source"
    if row.reason is not None:
        return str(row.reason)
    return "duplicate_email" if row.rn > 1 else None


def membership(session: Session, mailshot_id: int, person_id: int) -> MembershipPublic:
    ms = get_or_404(session, Mailshot, mailshot_id, "mailshot")
    person = get_or_404(session, Person, person_id, "person")
    job = latest_snapshot_job(session, mailshot_id)
    if job is None:
        reason = live_reason(session, ms, person)
        job_id, evaluated = None, "live"
    else:
        job_id, evaluated = int(job.id), "snapshot"
        excluded = session.scalar(
            select(EXCLUSIONS.c.reason).where(
                EXCLUSIONS.c.job_id == job_id, EXCLUSIONS.c.person_id == person_id
            )
        )
        if excluded is not None:
            reason = str(excluded)
        elif _in_snapshot(session, job_id, int(job.recipients_total), person_id):
            reason = None
        else:
            reason = "not_in_source"
    return MembershipPublic(
        person_id=person_id,
        mailshot_id=mailshot_id,
        in_audience=reason is None,
        reason=reason,
        explanation=explain(session, ms, person, reason),
        sync_job_id=job_id,
        evaluated=evaluated,
    )
