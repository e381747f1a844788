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
``sync_recipients`` numbered ``seq`` 0..N-1 in person-id order): it first finds the few
addresses shared by several candidates (``GROUP BY ... HAVING count(*) > 1``, a read), then
writes the members slice by slice of person ids (``INSERT ... SELECT`` per slice, numbered
after the slices before it). Given a ``checkpoint``, it reads outside the write lock and
commits between slices, so a 1M audience never holds SQLite's write lock for long; without
one it writes everything in the caller's transaction and does not commit. :func:`recount`
counts the same thing without writing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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


#: Members written per slice (one short write transaction each when given a checkpoint).
SLICE_MEMBERS = 20_000

#: Called by :func:`snapshot` between its steps: commit, then begin a read-only (False)
#: or a writing (True) transaction; raises to stop the snapshot (e.g. a lost lease).
Checkpoint = Callable[[bool], None]


@dataclass
class _Plan:
    """What a snapshot reads before writing: the slices of person ids ``(after, upto]``
    (None: open-ended) and the duplicates (person id, email) in person-id order."""

    slices: list[tuple[int | None, int | None]]
    duplicates: list[tuple[int, str | None]]


def _in_range(column: Any, after: int | None, upto: int | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if after is not None:
        conds.append(column > after)
    if upto is not None:
        conds.append(column <= upto)
    return conds


def _plan(session: Session, src: Subquery, is_list: bool, slice_members: int) -> _Plan:
    """Read the slice bounds and the duplicate addresses of the source (writes nothing)."""
    p = Person.__table__
    numbered = select(
        src.c.person_id, func.row_number().over(order_by=src.c.person_id).label("n")
    ).subquery("numbered")
    uppers = [
        int(v)
        for v in session.scalars(
            select(numbered.c.person_id)
            .where(numbered.c.n % slice_members == 0)
            .order_by(numbered.c.person_id)
        )
    ]
    bounds: list[int | None] = [None, *uppers, None]
    # Duplicates: among the members no rule leaves out, everyone but the lowest id of each
    # shared normalised address. The shared addresses are found first (usually none), and
    # only their holders are ranked.
    base = src.join(p, p.c.id == src.c.person_id)
    candidate = _rules(session, src, is_list).is_(None)
    normalised = p.c.email_normalised
    shared = (
        select(normalised)
        .select_from(base)
        .where(candidate)
        .group_by(normalised)
        .having(func.count() > 1)
    )
    ranked = (
        select(
            p.c.id.label("person_id"),
            p.c.email,
            func.row_number().over(partition_by=normalised, order_by=p.c.id).label("rn"),
        )
        .select_from(base)
        .where(candidate, normalised.in_(shared))
        .subquery("ranked")
    )
    duplicates = [
        (int(row.person_id), row.email)
        for row in session.execute(
            select(ranked.c.person_id, ranked.c.email)
            .where(ranked.c.rn > 1)
            .order_by(ranked.c.person_id)
        )
    ]
    return _Plan(slices=list(pairwise(bounds)), duplicates=duplicates)


def _insert_ignoring(session: Session, table: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's dialect."""
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return dialect_insert(table).on_conflict_do_nothing()


def _write_slice(
    session: Session,
    job_id: int,
    src: Subquery,
    is_list: bool,
    after: int | None,
    upto: int | None,
    duplicates: list[tuple[int, str | None]],
) -> None:
    """Write the members of ``src`` with ids in ``(after, upto]``: their exclusions, then
    the included people numbered after the recipients already written."""
    p = Person.__table__
    e = SyncExclusion.__table__
    r = SyncRecipient.__table__
    base = src.join(p, p.c.id == src.c.person_id)
    in_slice = _in_range(src.c.person_id, after, upto) + _in_range(p.c.id, after, upto)
    reason = _rules(session, src, is_list)
    excl_cols = ["job_id", "person_id", "reason", "email"]
    ruled_out = (
        select(literal(job_id), p.c.id, reason, p.c.email)
        .select_from(base)
        .where(reason.is_not(None), *in_slice)
    )
    # ON CONFLICT: a person met twice (a duplicate whose data changed between the reads)
    # keeps their first reason; the snapshot never fails on it.
    session.execute(_insert_ignoring(session, e).from_select(excl_cols, ruled_out))
    dups = [
        {"job_id": job_id, "person_id": pid, "reason": "duplicate_email", "email": email}
        for pid, email in duplicates
        if (after is None or pid > after) and (upto is None or pid <= upto)
    ]
    if dups:
        session.execute(_insert_ignoring(session, e), dups)

    last_seq = session.scalar(select(func.max(r.c.seq)).where(r.c.job_id == job_id))
    first_seq = 0 if last_seq is None else int(last_seq) + 1
    left_out = exists().where(and_(e.c.job_id == job_id, e.c.person_id == p.c.id))
    included = (
        select(
            literal(job_id),
            # src is read in person-id order (its key), so this numbering needs no sort.
            (func.row_number().over(order_by=src.c.person_id) + (first_seq - 1)),
            p.c.id,
            p.c.email,
            p.c.first_name,
            p.c.last_name,
            p.c.organisation_id,
        )
        .select_from(base)
        .where(not_(left_out), *in_slice)
    )
    columns = ["job_id", "seq", "person_id", "email", "first_name", "last_name", "organisation_id"]
    session.execute(insert(SyncRecipient).from_select(columns, included))


def snapshot(
    session: Session,
    job_id: int,
    mailshot: Mailshot,
    *,
    checkpoint: Checkpoint | None = None,
    slice_members: int = SLICE_MEMBERS,
) -> AudienceCounts:
    """Write the audience of ``mailshot`` for sync job ``job_id``: one ``sync_exclusions``
    row per person left out (with the reason), then the included people into
    ``sync_recipients`` numbered ``seq`` 0..N-1 in person-id order. Replaces an earlier
    snapshot of the same job (so a redo after a takeover starts clean).

    Without ``checkpoint`` everything runs in the caller's transaction, uncommitted. With
    one, the reads run in a read-only transaction and each slice of ``slice_members``
    members in its own writing one (``checkpoint`` commits between them); the last slice
    is left uncommitted for the caller."""
    src, is_list = _source(session, mailshot)
    if checkpoint is not None:
        checkpoint(False)
    plan = _plan(session, src, is_list, slice_members)
    if checkpoint is not None:
        checkpoint(True)
    session.execute(sql_delete(SyncRecipient).where(SyncRecipient.job_id == job_id))
    session.execute(sql_delete(SyncExclusion).where(SyncExclusion.job_id == job_id))
    for n, (after, upto) in enumerate(plan.slices):
        if n and checkpoint is not None:
            checkpoint(True)
        _write_slice(session, job_id, src, is_list, after, upto, plan.duplicates)

    # seq is numbered from 0 without gaps, and max() is one probe of the primary key.
    r = SyncRecipient.__table__
    e = SyncExclusion.__table__
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
