"""Who is in a mailshot's audience, who is left out and why: the audience rules as
set-based SQL (SQLAlchemy Core; the same statements on SQLite and PostgreSQL, but for the
aggregate and table functions that carry a slice's ids, see below).

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
recount never gives it (the bridge relays them from the ESP when a sync finalizes, see
:mod:`mailshot.crm.sync.suppressed`).

:func:`recount` counts the audience by these rules without writing;
:func:`mailshot.crm.services.snapshot.snapshot` writes it for a sync job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import UTCDateTime
from mailshot.core.errors import AppError
from mailshot.crm.errors import AUDIENCE_SOURCE_MISSING, AUDIENCE_SOURCE_NOT_FOUND
from mailshot.crm.models import (
    CampaignMember,
    ComplianceRecord,
    MailingList,
    MailingListMember,
    Mailshot,
    MarketingCampaign,
    Person,
)
from mailshot.crm.services import dynamic_lists
from mailshot.crm.services.compliance import gdpr_mode

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


def _rules(session: Session, src: Subquery, is_list: bool) -> ColumnElement[Any]:
    """The first rule that leaves a member out (the reason), or NULL: over ``src`` joined
    to ``people``."""
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
    return case(*whens, else_=None)


def _classified(
    session: Session, mailshot: Mailshot, only: ColumnElement[bool] | None = None
) -> tuple[Subquery, Subquery]:
    """The source subquery, and every member with ``reason`` (the first rule that leaves
    them out, or NULL) and ``rn`` (their rank among the not-yet-excluded sharing their
    normalised address: rn > 1 with a NULL reason means a duplicate). ``only`` (a condition
    on ``people``) limits the members ranked, e.g. to the people sharing one address."""
    src, is_list = _source(session, mailshot)
    p = Person.__table__
    reason = _rules(session, src, is_list).label("reason")
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


def recount(session: Session, mailshot: Mailshot) -> AudienceCounts:
    """Count the audience of ``mailshot`` by the same rules as
    :func:`mailshot.crm.services.snapshot.snapshot`, writing nothing."""
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
