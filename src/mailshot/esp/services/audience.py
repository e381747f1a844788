"""Campaign audiences: receiving recipient chunks (the hot path of a sync), finalising a
snapshot, and listing a campaign's recipients.

A chunk is written in one transaction with set-based statements and no ORM objects:

1. check the rows column by column (``chunk_check.parse_chunk``: builtins over the whole
   chunk; row by row only to name the problems of a bad chunk); rows whose normalised
   address already appeared in the request are duplicates (the first is kept);
2. hand the rows to the database as a table, so no statement loops in Python. SQLite: the
   rows are first copied (multi-row ``INSERT ... VALUES`` statements of up to 1,000 rows
   of bound values each) into a temporary table of the connection, in a transaction of
   their own that takes no lock on the database file, so the write lock is then held
   only for the statements below, which read plain columns (reading them out of a JSON
   value instead cost more than the two statements themselves).
   PostgreSQL: one JSON value read as a table (``jsonb_array_elements``);
3. upsert the contacts by normalised address (``INSERT ... SELECT ... ON CONFLICT DO
   UPDATE`` that only touches rows whose names or CRM ids changed), in address order so
   concurrent chunks lock rows in the same order;
4. upsert the audience rows ``(campaign, contact)`` tagged with the snapshot, joining the
   chunk to the contacts (no ids read back into Python). A row of the same snapshot is not
   overwritten: held by the same CRM person it is already written; held by another, that
   recipient is a duplicate address, recorded in ``campaign_duplicates`` keyed by the CRM
   person. Only when fewer rows were written than sent (a replay, or duplicates) is the
   chunk compared with what the snapshot holds.

So a chunk written twice changes nothing and answers the same. **Duplicates**, as the ESP
can see them, are the CRM rows of a snapshot whose normalised address another row of the
same snapshot already holds; ``received = audience_count + duplicate_count`` is the number
of CRM rows the ESP has taken for the snapshot, and finalize compares it with ``expected``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import nullcontext
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Row,
    String,
    column,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Subquery

from mailshot.contracts.chunks import RecipientChunk, RecipientsWritten
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import SMALL_WRITE_ROWS, UTCDateTime, bulk_writes, is_sqlite
from mailshot.core.db.sqlhelpers import upsert
from mailshot.core.errors import AppError
from mailshot.core.web.paging import decode_cursor, encode_cursor
from mailshot.esp import errors
from mailshot.esp.models import (
    Campaign,
    CampaignDuplicate,
    CampaignRecipient,
    Contact,
    Suppression,
)
from mailshot.esp.models.campaigns import suppressed_clause
from mailshot.esp.schemas.audience import RecipientPublic
from mailshot.esp.services.chunk_check import NAME_COLUMNS, ParsedChunk, parse_chunk
from mailshot.esp.services.integration import ensure_not_paused

CONTACTS = Contact.__table__
RECIPIENTS = CampaignRecipient.__table__
DUPLICATES = CampaignDuplicate.__table__


def campaign_for_write(
    session: Session, crm_mailshot_id: int, *, exclusive: bool
) -> Row[int, int | None, bool]:
    """The campaign's id and snapshot, locked against a concurrent PUT or finalize."""
    row = session.execute(
        select(Campaign.id, Campaign.current_snapshot, Campaign.audience_needs_prune)
        .where(Campaign.crm_mailshot_id == crm_mailshot_id)
        .with_for_update(read=not exclusive)
    ).first()
    if row is None:
        raise AppError(errors.CAMPAIGN_NOT_FOUND, crm_mailshot_id=crm_mailshot_id)
    return row


def check_snapshot(crm_mailshot_id: int, snapshot: int, current: int | None) -> None:
    if current is not None and snapshot < current:
        spec = errors.STALE_SNAPSHOT
    elif current is None or snapshot > current:
        spec = errors.SNAPSHOT_NOT_STARTED
    else:
        return
    raise AppError(
        spec, snapshot=snapshot, crm_mailshot_id=crm_mailshot_id, current_snapshot=current
    )


#: SQLite: the temporary table (one per connection) a chunk's rows are staged in.
_STAGED_NAME = "esp_chunk_rows"
STAGED = f"temp.{_STAGED_NAME}"
_STAGED_COLUMNS = (
    "person_id INTEGER, email TEXT, email_normalised TEXT, first_name TEXT, last_name TEXT,"
    " organisation_id INTEGER, organisation TEXT"
)


#: Rows per staging statement (at most; fewer where SQLite allows fewer bound values).
#: Multi-row ``VALUES`` with bound values: SQLite reads the values as they are, about half
#: the CPU of reading them out of one JSON text (``json_each`` and ``->>`` parse each row
#: once per column), and the GIL is let go once per statement; an ``executemany`` would
#: let it go and take it back per row, waiting for it behind the server's other threads
#: each time.
STAGE_ROWS_PER_STATEMENT = 1000
_WIDTH = _STAGED_COLUMNS.count(",") + 1


@lru_cache(maxsize=8)
def _insert_values(rows: int) -> str:
    return f"INSERT INTO {STAGED} VALUES " + ",".join([f"({','.join('?' * _WIDTH)})"] * rows)


def _stage_rows(conn: Connection, columns: Sequence[Sequence[Any]]) -> None:
    """SQLite: copy a chunk's rows (given column by column, in the staged table's column
    order) into this connection's temporary table, in a transaction of their own. It
    writes only the connection's temporary database, so it neither takes nor waits for
    the write lock of the database file; ``conn`` must not be in a transaction."""
    raw = conn.connection.driver_connection
    assert raw is not None and not conn.in_transaction()
    raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGED_NAME} ({_STAGED_COLUMNS})")
    per = min(
        STAGE_ROWS_PER_STATEMENT, raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _WIDTH
    )
    count = len(columns[0])
    values: list[Any] = [None] * (count * _WIDTH)
    for i, column_values in enumerate(columns):
        values[i::_WIDTH] = column_values  # interleaved into rows, at C speed
    full = count // per * per
    raw.execute("BEGIN")
    try:
        raw.execute(f"DELETE FROM {STAGED}")
        insert_full = _insert_values(per)
        for start in range(0, full * _WIDTH, per * _WIDTH):
            raw.execute(insert_full, values[start : start + per * _WIDTH])
        if full < count:
            raw.execute(_insert_values(count - full), values[full * _WIDTH :])
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")


def _chunk_source(session: Session) -> Subquery:
    """The chunk's rows as a table: on SQLite the staged rows (:func:`_stage_rows`); on
    PostgreSQL read from one JSON parameter ``:rows`` (``jsonb_array_elements``). Either
    way the rows reach the database at once and every statement below runs without a
    Python loop."""
    if is_sqlite(session):
        sql = (
            "SELECT person_id, email, email_normalised, first_name, last_name,"
            f" organisation_id, organisation FROM {STAGED}"
        )
    else:
        sql = (
            "SELECT CAST(value ->> 0 AS BIGINT) AS person_id, value ->> 1 AS email, "
            "value ->> 2 AS email_normalised, value ->> 3 AS first_name, "
            "value ->> 4 AS last_name, CAST(value ->> 5 AS BIGINT) AS organisation_id, "
            "value ->> 6 AS organisation "
            "FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS chunk_rows(value)"
        )
    return (
        text(sql)
        .columns(
            column("person_id", BigInteger),
            column("email", String),
            column("email_normalised", String),
            column("first_name", String),
            column("last_name", String),
            column("organisation_id", BigInteger),
            column("organisation", String),
        )
        .subquery("chunk")
    )


def _contact_of(chunk: Subquery) -> Any:
    """The id of the contact of a chunk row, as a scalar subquery correlated to the row."""
    return (
        select(CONTACTS.c.id)
        .where(CONTACTS.c.email_normalised == chunk.c.email_normalised)
        .correlate_except(CONTACTS)
        .scalar_subquery()
    )


def _upsert_contacts(session: Session, chunk: Subquery, parsed: ParsedChunk, rows: str) -> None:
    """Upsert the chunk's contacts by normalised address (in address order), touching only
    contacts whose names or CRM ids changed."""
    now = literal(utcnow(), UTCDateTime())
    stmt = upsert(session, CONTACTS)
    new = stmt.excluded
    updated = ["email", "crm_person_id", *(NAME_COLUMNS[c] for c in parsed.present)]
    source = (
        select(
            chunk.c.email,
            chunk.c.email_normalised,
            chunk.c.first_name,
            chunk.c.last_name,
            chunk.c.person_id,
            chunk.c.organisation_id,
            chunk.c.organisation,
            true(),
            now,
            now,
        )
        .where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
        .order_by(chunk.c.email_normalised)
    )
    stmt = stmt.from_select(
        [
            "email",
            "email_normalised",
            "first_name",
            "last_name",
            "crm_person_id",
            "crm_organisation_id",
            "organisation",
            "opt_in",
            "created_at",
            "updated_at",
        ],
        source,
    ).on_conflict_do_update(
        index_elements=[CONTACTS.c.email_normalised],
        set_={**{c: new[c] for c in updated}, "updated_at": new.updated_at},
        where=or_(*(CONTACTS.c[c].is_distinct_from(new[c]) for c in updated)),
    )
    session.execute(stmt, {"rows": rows})


def _upsert_audience(
    session: Session, chunk: Subquery, campaign_id: int, snapshot: int, rows: str
) -> int:
    """Give each contact of the chunk an audience row of this snapshot, unless the snapshot
    already has one for it (held by this CRM person: nothing to do; by another: a
    duplicate address). Return how many rows were written."""
    stmt = upsert(session, RECIPIENTS)
    new = stmt.excluded
    # The contact is looked up per chunk row (a correlated subquery), so the database
    # walks the chunk and probes the contacts' index, whatever it knows of the tables.
    contact_id = _contact_of(chunk).label("contact_id")
    inner = select(contact_id, chunk.c.person_id).subquery("found")
    source = (
        select(
            literal(campaign_id, BigInteger),
            inner.c.contact_id,
            literal(snapshot, BigInteger),
            inner.c.person_id,
        )
        .where(true())
        .order_by(inner.c.contact_id)
    )
    stmt = stmt.from_select(
        ["campaign_id", "contact_id", "snapshot", "crm_person_id"], source
    ).on_conflict_do_update(
        index_elements=[RECIPIENTS.c.campaign_id, RECIPIENTS.c.contact_id],
        set_={"snapshot": new.snapshot, "crm_person_id": new.crm_person_id},
        where=RECIPIENTS.c.snapshot != new.snapshot,
    )
    return int(session.execute(stmt, {"rows": rows}).rowcount)  # type: ignore[attr-defined]


def _held_by_others(
    session: Session, chunk: Subquery, campaign_id: int, snapshot: int, rows: str
) -> list[tuple[int, str]]:
    """(person, address) of the chunk's rows whose address this snapshot already gave to
    another CRM person."""
    held = (
        select(literal(1))
        .where(
            RECIPIENTS.c.campaign_id == campaign_id,
            RECIPIENTS.c.contact_id == _contact_of(chunk),
            RECIPIENTS.c.snapshot == snapshot,
            RECIPIENTS.c.crm_person_id.is_distinct_from(chunk.c.person_id),
        )
        .correlate_except(RECIPIENTS)
        .exists()
    )
    result = session.execute(
        select(chunk.c.person_id, chunk.c.email_normalised).where(held), {"rows": rows}
    )
    return [(int(p), str(e)) for p, e in result]


def _record_duplicates(
    session: Session, campaign_id: int, snapshot: int, dups: list[tuple[int, str]]
) -> None:
    if not dups:
        return
    values = {(person, norm) for person, norm in dups}
    stmt = upsert(session, DUPLICATES)
    stmt = stmt.on_conflict_do_update(
        index_elements=[DUPLICATES.c.campaign_id, DUPLICATES.c.crm_person_id],
        set_={
            "snapshot": stmt.excluded.snapshot,
            "email_normalised": stmt.excluded.email_normalised,
        },
    )
    rows = [
        {
            "campaign_id": campaign_id,
            "crm_person_id": p,
            "snapshot": snapshot,
            "email_normalised": e,
        }
        for p, e in sorted(values)
    ]
    session.connection().execute(stmt, rows)


def write_recipients(
    sessions: sessionmaker[Session], crm_mailshot_id: int, chunk: RecipientChunk
) -> RecipientsWritten:
    """Write one chunk of a snapshot's audience (idempotent), in one transaction. Takes the
    chunk over: its ``rows`` are emptied once checked.

    The chunk is checked, and on SQLite staged, before the transaction begins, so the write
    lock is not held while parsing or copying rows, and the rows' Python values (the
    chunk's ``rows`` too) are let go once staged. The API passes sessions whose SQLite
    connections do not check foreign keys (:func:`mailshot.core.db.engine.make_unchecked_writer`):
    every row written here references the campaign read at the start of the transaction
    or a contact upserted in it (``contact_id`` is NOT NULL, so a missing one is refused),
    and the write lock keeps them from being deleted before the commit."""
    parsed = parse_chunk(chunk.columns, chunk.rows)
    chunk.rows = []  # checked: only ``parsed`` is needed now, and only until it is staged
    engine = sessions.kw["bind"]
    # A large chunk is bulk work: a campaign, a small chunk or a finalize waiting for the
    # write lock goes first.
    bulk = bulk_writes() if parsed.count > SMALL_WRITE_ROWS else nullcontext()
    with engine.connect() as conn, bulk:
        if parsed.count and conn.dialect.name == "sqlite":
            _stage_rows(conn, parsed.columns)
            parsed.let_go()  # in the staged table: nothing of it waits in Python for the lock
        with sessions(bind=conn) as session:
            return _write_parsed(session, crm_mailshot_id, chunk.snapshot, parsed)


def _write_parsed(
    session: Session, crm_mailshot_id: int, snapshot: int, parsed: ParsedChunk
) -> RecipientsWritten:
    ensure_not_paused(session)
    campaign = campaign_for_write(session, crm_mailshot_id, exclusive=False)
    check_snapshot(crm_mailshot_id, snapshot, campaign.current_snapshot)
    campaign_id = campaign.id
    duplicates = list(parsed.duplicates)
    written = 0
    if parsed.count:
        # SQLite reads the staged rows; the parameter is then unused.
        rows = "" if is_sqlite(session) else orjson.dumps(parsed.rows).decode()
        source = _chunk_source(session)
        _upsert_contacts(session, source, parsed, rows)
        changed = _upsert_audience(session, source, campaign_id, snapshot, rows)
        written = parsed.count
        if changed != written:  # a replay, or addresses this snapshot already holds
            others = _held_by_others(session, source, campaign_id, snapshot, rows)
            duplicates += others
            written -= len(others)
    _record_duplicates(session, campaign_id, snapshot, duplicates)
    session.commit()
    return RecipientsWritten(written=written, duplicates=len(duplicates))


def list_recipients(
    session: Session,
    campaign_id: int,
    *,
    cursor: str | None,
    limit: int,
    snapshot: int | None = None,
) -> tuple[list[RecipientPublic], str | None]:
    """One page of a campaign's audience, in contact id order."""
    suppressed = (
        select(literal(1))
        .where(Suppression.email_normalised == CONTACTS.c.email_normalised, suppressed_clause())
        .exists()
    )
    query = (
        select(
            RECIPIENTS.c.contact_id,
            CONTACTS.c.email,
            CONTACTS.c.first_name,
            CONTACTS.c.last_name,
            RECIPIENTS.c.crm_person_id,
            RECIPIENTS.c.snapshot,
            suppressed.label("suppressed"),
        )
        .join(CONTACTS, CONTACTS.c.id == RECIPIENTS.c.contact_id)
        .where(RECIPIENTS.c.campaign_id == campaign_id)
        .order_by(RECIPIENTS.c.contact_id)
        .limit(limit + 1)
    )
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(RECIPIENTS.c.contact_id > after)
    if snapshot is not None:
        query = query.where(RECIPIENTS.c.snapshot == snapshot)
    rows = session.execute(query).all()
    items = [
        RecipientPublic(
            contact_id=r.contact_id,
            email=r.email,
            first_name=r.first_name,
            last_name=r.last_name,
            crm_person_id=r.crm_person_id,
            snapshot=r.snapshot,
            suppressed=bool(r.suppressed),
        )
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor(items[-1].contact_id) if len(rows) > limit else None
    return items, next_cursor
