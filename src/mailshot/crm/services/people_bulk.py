"""Set-based writes of many People at once, for the CSV import: find people by address,
insert and update thousands of rows per statement, add them to a list.

Thousands of values travel as ONE bound parameter: a JSON array read with ``json_each``
on SQLite, an array (or ``jsonb_array_elements``) on PostgreSQL, so a batch costs a few
statements whatever its size, and no per-row parameter processing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from mailshot.core.db.engine import UTCDateTime, is_sqlite
from mailshot.core.db.sqlhelpers import upsert
from mailshot.crm.models import MailingListMember, Person

PEOPLE = cast(Table, Person.__table__)
MEMBERS = cast(Table, MailingListMember.__table__)
#: The person columns an import writes besides the address, in this order.
WRITABLE = ("first_name", "last_name", "country", "job_title", "organisation_id", "no_email")
_TYPES: dict[str, Any] = {"organisation_id": BigInteger, "no_email": Boolean}


def one_of(session: Session, column: Any, values: list[Any], sql_type: Any) -> Any:
    """``column IN values`` with the values as one bound parameter."""
    if is_sqlite(session):
        each = func.json_each(bindparam(None, orjson.dumps(values).decode(), type_=String))
        return column.in_(select(literal_column("value")).select_from(each))
    return column == any_(bindparam(None, values, type_=postgresql.ARRAY(sql_type)))


def lowest_by_email(session: Session, emails: list[str]) -> dict[str, tuple[Any, ...]]:
    """normalised address -> ``(id, *WRITABLE)`` of the lowest-id person with that address,
    for the addresses somebody has."""
    if not emails:
        return {}
    cols = [PEOPLE.c[name] for name in ("email_normalised", "id", *WRITABLE)]
    rows = session.execute(
        select(*cols)
        .where(one_of(session, PEOPLE.c.email_normalised, emails, String))
        .order_by(PEOPLE.c.id.desc())
    )
    # Highest id first, so the lowest id is the one left in the dict.
    return {row[0]: tuple(row[1:]) for row in rows}


def _rows_source(session: Session, rows: list[list[Any]], width: int) -> tuple[Any, list[Any]]:
    """A FROM clause yielding ``rows`` (lists of ``width`` JSON values), and the expression
    of each cell."""
    data = bindparam(None, orjson.dumps(rows).decode(), type_=String)
    if is_sqlite(session):
        src = func.json_each(data).table_valued("value")
        cells = [func.json_extract(src.c.value, f"$[{i}]") for i in range(width)]
        return src, cells
    src = func.jsonb_array_elements(sql_cast(data, postgresql.JSONB)).table_valued("value")
    return src, [src.c.value.op("->>")(literal(i)) for i in range(width)]


def insert_people(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    """Insert people (``email``, ``email_normalised``, ``email_status`` and
    :data:`WRITABLE` each) in one ``INSERT ... SELECT``."""
    if not rows:
        return
    names = ("email", "email_normalised", "email_status", *WRITABLE)
    src, cells = _rows_source(session, [[r[n] for n in names] for r in rows], len(names))
    typed: list[ColumnElement[Any]] = [
        sql_cast(cell, _TYPES[name]) if name in _TYPES and not is_sqlite(session) else cell
        for name, cell in zip(names, cells, strict=True)
    ]
    stamp = literal(now, UTCDateTime())
    query = select(*typed, stamp, stamp).select_from(src)
    session.execute(insert(PEOPLE).from_select([*names, "created_at", "updated_at"], query))


def update_people(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    """Set :data:`WRITABLE` of people by ``id`` (every key of every row given)."""
    if not rows:
        return
    stmt = (
        update(PEOPLE)
        .where(PEOPLE.c.id == bindparam("_id"))
        .values({k: bindparam(f"_{k}") for k in (*WRITABLE, "updated_at")})
    )
    params = [
        {"_id": r["id"], "_updated_at": now, **{f"_{k}": r[k] for k in WRITABLE}} for r in rows
    ]
    session.execute(stmt, params)


def add_to_list(session: Session, list_id: int, person_ids: list[int], now: datetime) -> int:
    """Make the people subscribed members of the list unless they are members already
    (whose flag is kept); return how many joined."""
    if not person_ids:
        return 0
    present = set(
        session.scalars(
            select(MEMBERS.c.person_id).where(
                MEMBERS.c.list_id == list_id,
                one_of(session, MEMBERS.c.person_id, person_ids, BigInteger),
            )
        )
    )
    joining = sorted(set(person_ids) - present)
    if joining:
        stmt = upsert(session, MailingListMember).on_conflict_do_nothing()
        session.execute(
            stmt,
            [
                {
                    "list_id": list_id,
                    "person_id": pid,
                    "subscribed": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for pid in joining
            ],
        )
    return len(joining)
