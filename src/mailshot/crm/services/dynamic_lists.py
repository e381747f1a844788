"""Dynamic mailing lists: the People a list's saved filter selects, as one set-based query.

A dynamic list stores no members: its members are computed from
:class:`~mailshot.crm.schemas.list_filters.ListFilter` whenever they are needed, and for a
sync that is when the sync's prepare step snapshots the audience (so the audience is the
filter's answer at the moment the sync starts). Every member of a dynamic list counts as
subscribed; people leave it by no longer matching the filter (or by opting out).

Conditions (all must hold): ``country`` (any of, ignoring case), ``organisation_id`` (any
of), ``created_after`` (at or after), ``created_before`` (before), ``job_title_contains``
(ignoring case), ``email_domain`` (the normalised address ends with ``@domain``, any of).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, true
from sqlalchemy.orm import Session

from mailshot.core.db.engine import UTCDateTime
from mailshot.core.web.paging import decode_cursor, encode_cursor
from mailshot.crm.models import MailingList, MailingListMember, Person
from mailshot.crm.schemas.list_filters import ListFilter
from mailshot.crm.services.common import contains_pattern


def _ends_with(text: str) -> str:
    """A LIKE pattern matching strings that end with ``text`` (wildcards escaped)."""
    return contains_pattern(text)[:-1]


def parse(stored: dict[str, Any] | None) -> ListFilter:
    """The filter of a stored list (validated again: the stored JSON is not trusted)."""
    return ListFilter.model_validate(stored or {})


def conditions(flt: ListFilter) -> ColumnElement[bool]:
    """The filter as one SQL condition over ``people``."""
    p = Person.__table__
    parts: list[ColumnElement[bool]] = []
    if flt.country:
        parts.append(func.lower(p.c.country).in_(sorted({c.lower() for c in flt.country})))
    if flt.organisation_id:
        parts.append(p.c.organisation_id.in_(sorted(set(flt.organisation_id))))
    if flt.created_after is not None:
        parts.append(p.c.created_at >= literal(flt.created_after, UTCDateTime()))
    if flt.created_before is not None:
        parts.append(p.c.created_at < literal(flt.created_before, UTCDateTime()))
    if flt.job_title_contains:
        pattern = contains_pattern(flt.job_title_contains)
        parts.append(p.c.job_title.ilike(pattern, escape="\\"))
    if flt.email_domain:
        parts.append(
            or_(
                *(
                    p.c.email_normalised.like(_ends_with("@" + d), escape="\\")
                    for d in sorted(set(flt.email_domain))
                )
            )
        )
    return and_(true(), *parts)


def members_query(stored: dict[str, Any] | None) -> Select[Any]:
    """``person_id`` and ``subscribed`` (always true) of every person the filter selects:
    the same shape as a static list's members, for the audience rules."""
    p = Person.__table__
    return select(p.c.id.label("person_id"), literal(True).label("subscribed")).where(
        conditions(parse(stored))
    )


def count(session: Session, ml: MailingList) -> int:
    """How many people the list's filter selects now."""
    inner = members_query(ml.filter).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def members_page(
    session: Session, ml: MailingList, *, cursor: str | None, limit: int
) -> tuple[list[MailingListMember], str | None]:
    """One page of the people the filter selects, as (unsaved) member rows in person-id
    order: what ``GET /mailing-lists/{id}/members`` shows for a dynamic list."""
    p = Person.__table__
    query = select(p.c.id, p.c.created_at, p.c.updated_at).where(conditions(parse(ml.filter)))
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(p.c.id > after)
    rows = session.execute(query.order_by(p.c.id).limit(limit + 1)).all()
    next_cursor = encode_cursor(int(rows[limit - 1].id)) if len(rows) > limit else None
    members = [
        MailingListMember(
            list_id=ml.id,
            person_id=row.id,
            subscribed=True,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows[:limit]
    ]
    return members, next_cursor
