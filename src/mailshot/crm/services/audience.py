"""Who is in a mailshot's audience, who is left out and why: the audience rules as
set-based SQL (SQLAlchemy Core; the same statements on SQLite and PostgreSQL).

The source is the mailshot's mailing list (every member, whatever ``subscribed``; for a
dynamic list, the people its filter selects now, see
:mod:`mailshot.crm.services.dynamic_lists`) or its marketing campaign (the members whose
status is in ``campaign_member_statuses``, or every member when that list is empty).
Each member is then left out for the first reason that
applies, in this order:

==================  ===========================================================
``unsubscribed``    list member with ``subscribed = false``
``opted_out``       the person's "No Email" opt-out
``no_email_address`` no address (``email_status = 'missing'``)
``invalid_email``   an address that is not valid (``email_status = 'invalid'``)
``no_consent``      GDPR mode on, and no compliance record in force
``duplicate_email`` the same normalised address as an included person with a lower id
==================  ===========================================================

A seventh reason, ``suppressed_at_esp`` (unsubscribed or bounce-limited at the ESP), is
reserved for the people the ESP suppresses: the CRM cannot know them before a sync, so a
recount never gives it (the relay from the ESP through the bridge is not built yet).

:func:`snapshot` writes the result for a sync job (``sync_exclusions``, then
``sync_recipients`` numbered ``seq`` 0..N-1 in person-id order) with two
``INSERT ... SELECT`` statements and does not commit; :func:`recount` counts the same
thing without writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from mailshot.clock import utcnow
from mailshot.crm.errors import AUDIENCE_SOURCE_MISSING, AUDIENCE_SOURCE_NOT_FOUND
from mailshot.crm.models import (
    CampaignMember,
    ComplianceRecord,
    MailingList,
    MailingListMember,
    Mailshot,
    MarketingCampaign,
    Person,
    SyncExclusion,
    SyncRecipient,
)
from mailshot.crm.services import dynamic_lists
from mailshot.crm.services.compliance import gdpr_mode
from mailshot.db import UTCDateTime
from mailshot.errors import AppError

#: Every reason a member can be left out, in the order the rules apply.
REASONS = (
    "unsubscribed",
    "opted_out",
    "no_email_address",
    "invalid_email",
    "no_consent",
    "duplicate_email",
)
#: The reason recorded after a sync for people the ESP suppressed (not in REASONS: the
#: CRM's own rules never give it, and a recount cannot know it).
SUPPRESSED_AT_ESP = "suppressed_at_esp"


@dataclass
class AudienceCounts:
    """How many members of the source are included, and how many are left out per reason
    (every reason present, 0 when none)."""

    included: int
    excluded: dict[str, int]

    @property
    def total_source(self) -> int:
        return self.included + sum(self.excluded.values())

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())


def _source(session: Session, mailshot: Mailshot) -> tuple[Subquery, bool]:
    """The source's members as a subquery (``person_id``, and ``subscribed`` for a list);
    the flag says whether it is a list. Refuses a missing or deleted source."""
    common: dict[str, Any] = {"name": mailshot.name, "mailshot_id": mailshot.id}
    labels: dict[str, Any]
    if mailshot.audience_source == "marketing_campaign":
        labels = {
            "source_label": "marketing campaign",
            "id_field": "marketing_campaign_id",
            **common,
        }
        campaign_id = mailshot.marketing_campaign_id
        if campaign_id is None:
            raise AppError(AUDIENCE_SOURCE_MISSING, **labels)
        if session.get(MarketingCampaign, campaign_id) is None:
            raise AppError(AUDIENCE_SOURCE_NOT_FOUND, source_id=campaign_id, **labels)
        cm = CampaignMember.__table__
        query: Select[Any] = select(cm.c.person_id).where(cm.c.campaign_id == campaign_id)
        if mailshot.campaign_member_statuses:
            query = query.where(cm.c.status.in_(list(mailshot.campaign_member_statuses)))
        return query.subquery("src"), False
    labels = {
        "source_label": "mailing list",
        "id_field": "mailing_list_id",
        **common,
    }
    list_id = mailshot.mailing_list_id
    if list_id is None:
        raise AppError(AUDIENCE_SOURCE_MISSING, **labels)
    ml = session.get(MailingList, list_id)
    if ml is None:
        raise AppError(AUDIENCE_SOURCE_NOT_FOUND, source_id=list_id, **labels)
    if ml.kind == "dynamic":
        return dynamic_lists.members_query(ml.filter).subquery("src"), False
    lm = MailingListMember.__table__
    query = select(lm.c.person_id, lm.c.subscribed).where(lm.c.list_id == list_id)
    return query.subquery("src"), True


def _classified(
    session: Session, mailshot: Mailshot, only: ColumnElement[bool] | None = None
) -> tuple[Subquery, Subquery]:
    """The source subquery, and every member with ``reason`` (the first rule that leaves
    them out, or NULL) and ``rn`` (their rank among the not-yet-excluded sharing their
    normalised address: rn > 1 with a NULL reason means a duplicate). ``only`` (a condition
    on ``people``) limits the members ranked, e.g. to the people sharing one address."""
    src, is_list = _source(session, mailshot)
    p = Person.__table__
    whens: list[tuple[ColumnElement[bool], str]] = []
    if is_list:
        whens.append((not_(src.c.subscribed), "unsubscribed"))
    whens += [
        (p.c.no_email == True, "opted_out"),  # noqa: E712
        (or_(p.c.email_status == "missing", p.c.email.is_(None)), "no_email_address"),
        (p.c.email_status == "invalid", "invalid_email"),
    ]
    if gdpr_mode(session):
        c = ComplianceRecord.__table__
        now = literal(utcnow(), UTCDateTime())
        in_force = exists().where(
            c.c.person_id == p.c.id,
            c.c.active == True,  # noqa: E712
            c.c.revoked_at.is_(None),
            or_(c.c.expires_at.is_(None), c.c.expires_at > now),
        )
        whens.append((not_(in_force), "no_consent"))
    reason = case(*whens, else_=None).label("reason")
    normalised = p.c.email_normalised
    members = select(
        p.c.id.label("person_id"),
        p.c.email,
        reason,
        func.row_number().over(partition_by=(normalised, reason), order_by=p.c.id).label("rn"),
    ).select_from(src.join(p, p.c.id == src.c.person_id))
    if only is not None:
        members = members.where(only)
    return src, members.subquery("ranked")


def _final_reason(ranked: Subquery) -> ColumnElement[Any]:
    return case(
        (ranked.c.reason.is_not(None), ranked.c.reason),
        (ranked.c.rn > 1, literal("duplicate_email")),
        else_=None,
    )


def _counts(included: int, rows: list[tuple[str, int]]) -> AudienceCounts:
    excluded = dict.fromkeys(REASONS, 0)
    for reason, n in rows:
        excluded[reason] = int(n)
    return AudienceCounts(included=included, excluded=excluded)


def snapshot(session: Session, job_id: int, mailshot: Mailshot) -> AudienceCounts:
    """Write the audience of ``mailshot`` for sync job ``job_id``: one ``sync_exclusions``
    row per person left out (with the reason), then the included people into
    ``sync_recipients`` numbered ``seq`` 0..N-1 in person-id order. Replaces an earlier
    snapshot of the same job. Does not commit."""
    src, ranked = _classified(session, mailshot)
    session.execute(sql_delete(SyncRecipient).where(SyncRecipient.job_id == job_id))
    session.execute(sql_delete(SyncExclusion).where(SyncExclusion.job_id == job_id))

    reason = _final_reason(ranked)
    excluded = select(literal(job_id), ranked.c.person_id, reason, ranked.c.email).where(
        or_(ranked.c.reason.is_not(None), ranked.c.rn > 1)
    )
    session.execute(
        insert(SyncExclusion).from_select(["job_id", "person_id", "reason", "email"], excluded)
    )

    p = Person.__table__
    e = SyncExclusion.__table__
    left_out = exists().where(and_(e.c.job_id == job_id, e.c.person_id == p.c.id))
    included = (
        select(
            literal(job_id),
            # src is read in person-id order (its key), so this numbering needs no sort.
            (func.row_number().over(order_by=src.c.person_id) - 1),
            p.c.id,
            p.c.email,
            p.c.first_name,
            p.c.last_name,
            p.c.organisation_id,
        )
        .select_from(src.join(p, p.c.id == src.c.person_id))
        .where(not_(left_out))
    )
    columns = ["job_id", "seq", "person_id", "email", "first_name", "last_name", "organisation_id"]
    session.execute(insert(SyncRecipient).from_select(columns, included))
    # seq is numbered from 0 without gaps, and max() is one probe of the primary key.
    r = SyncRecipient.__table__
    last_seq = session.scalar(select(func.max(r.c.seq)).where(r.c.job_id == job_id))
    n_included = 0 if last_seq is None else int(last_seq) + 1

    per_reason = session.execute(
        select(e.c.reason, func.count()).where(e.c.job_id == job_id).group_by(e.c.reason)
    )
    return _counts(n_included, list(per_reason))


def recount(session: Session, mailshot: Mailshot) -> AudienceCounts:
    """Count the audience of ``mailshot`` by the same rules as :func:`snapshot`, writing
    nothing."""
    _, ranked = _classified(session, mailshot)
    reason = _final_reason(ranked).label("final_reason")
    inner = select(reason).subquery("final")
    rows = session.execute(
        select(inner.c.final_reason, func.count()).group_by(inner.c.final_reason)
    )
    included = 0
    excluded: list[tuple[str, int]] = []
    for r, n in rows:
        if r is None:
            included = int(n)
        else:
            excluded.append((str(r), int(n)))
    return _counts(included, excluded)
