"""Campaign audiences: receiving recipient chunks (the hot path of a sync), finalising a
snapshot, and listing a campaign's recipients.

A chunk is written in one transaction with set-based statements and no ORM objects:

1. parse and check the rows in plain Python; rows whose normalised address already
   appeared in the request are duplicates (the first is kept);
2. upsert the contacts by normalised address (``INSERT ... ON CONFLICT DO UPDATE`` that
   only touches rows whose names or CRM ids changed), in address order so concurrent
   chunks lock rows in the same order;
3. read back the contact ids and which of them this snapshot already holds;
4. upsert the audience rows ``(campaign, contact)`` tagged with the snapshot. A row of the
   same snapshot held by another CRM person is not overwritten: that recipient is a
   duplicate address, recorded in ``campaign_duplicates`` keyed by the CRM person.

So a chunk written twice changes nothing and answers the same. **Duplicates**, as the ESP
can see them, are the CRM rows of a snapshot whose normalised address another row of the
same snapshot already holds; ``received = audience_count + duplicate_count`` is the number
of CRM rows the ESP has taken for the snapshot, and finalize compares it with ``expected``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Row, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from mailshot.clock import utcnow
from mailshot.db import UTCDateTime
from mailshot.errors import AppError, FieldProblem
from mailshot.esp import errors
from mailshot.esp.models import (
    Campaign,
    CampaignDuplicate,
    CampaignRecipient,
    Contact,
    Suppression,
)
from mailshot.esp.models.campaigns import suppressed_clause
from mailshot.esp.schemas.audience import RecipientChunk, RecipientPublic, RecipientsWritten
from mailshot.esp.services.campaigns import MAX_ROWS_PER_REQUEST
from mailshot.esp.services.common import normalise_email, plausible_address, upsert
from mailshot.esp.services.integration import ensure_not_paused
from mailshot.paging import decode_cursor, encode_cursor

CONTACTS = Contact.__table__
RECIPIENTS = CampaignRecipient.__table__
DUPLICATES = CampaignDuplicate.__table__
#: Largest IN list per statement (SQLite allows 32,766 bound parameters).
IN_BATCH = 10_000
#: Rows of one multi-row INSERT (SQLite's parameter limit, at 9 columns a row).
INSERT_BATCH = 2_000
REQUIRED_COLUMNS = ("person_id", "email")
#: Optional columns and the contact column each one updates.
NAME_COLUMNS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "organisation_id": "crm_organisation_id",
}
MAX_ROW_PROBLEMS = 20


@dataclass
class ParsedChunk:
    """A checked chunk: the first row per address, and the rows that repeat an address."""

    #: Contact values, one per normalised address, sorted by address.
    contacts: list[dict[str, Any]] = field(default_factory=list)
    #: The optional columns the chunk carries (only these are updated on contacts).
    present: tuple[str, ...] = ()
    #: (crm person id, normalised address) of rows repeating an address of this request.
    duplicates: list[tuple[int, str]] = field(default_factory=list)


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_chunk(columns: list[str], rows: list[list[Any]]) -> ParsedChunk:
    """Check and normalise a chunk (pure). Raises the catalogued error for bad input."""
    if len(rows) > MAX_ROWS_PER_REQUEST:
        raise AppError(
            errors.RECIPIENTS_TOO_MANY_ROWS, rows=len(rows), max_rows=MAX_ROWS_PER_REQUEST
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise AppError(errors.RECIPIENT_COLUMNS_REPEATED, repeated=", ".join(repeated))
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise AppError(errors.RECIPIENT_COLUMNS_MISSING, missing=" and ".join(missing))
    width = len(columns)
    i_person, i_email = columns.index("person_id"), columns.index("email")
    present = tuple(c for c in NAME_COLUMNS if c in columns)
    i_first = columns.index("first_name") if "first_name" in columns else None
    i_last = columns.index("last_name") if "last_name" in columns else None
    i_org = columns.index("organisation_id") if "organisation_id" in columns else None

    problems: list[FieldProblem] = []
    seen: dict[str, int] = {}
    parsed = ParsedChunk(present=present)
    now = utcnow()
    for n, row in enumerate(rows):
        if len(row) != width:
            problems.append(
                FieldProblem(f"rows.{n}", "row_width", f"has {len(row)} values for {width} columns")
            )
            continue
        person, email = row[i_person], row[i_email]
        first = row[i_first] if i_first is not None else None
        last = row[i_last] if i_last is not None else None
        org = row[i_org] if i_org is not None else None
        problem = None
        if not _is_int(person):
            problem = ("person_id", "int_type", "person_id must be an integer")
        elif not isinstance(email, str) or not plausible_address(normalise_email(email)):
            problem = ("email", "email_invalid", f"{email!r} is not an email address")
        elif not (first is None or isinstance(first, str)) or not (
            last is None or isinstance(last, str)
        ):
            problem = ("first_name", "string_type", "names must be strings or null")
        elif not (org is None or _is_int(org)):
            problem = ("organisation_id", "int_type", "organisation_id must be an integer")
        if problem is not None:
            problems.append(FieldProblem(f"rows.{n}.{problem[0]}", problem[1], problem[2]))
            continue
        norm = normalise_email(email)
        if norm in seen:
            parsed.duplicates.append((person, norm))
            continue
        seen[norm] = person
        parsed.contacts.append(
            {
                "email": email.strip(),
                "email_normalised": norm,
                "first_name": (first or "")[:255],
                "last_name": (last or "")[:255],
                "crm_person_id": person,
                "crm_organisation_id": org,
                "opt_in": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    if problems:
        first_problem = problems[0]
        raise AppError(
            errors.RECIPIENT_ROWS_INVALID,
            details=problems[:MAX_ROW_PROBLEMS],
            count=len(problems),
            first_row=first_problem.field.split(".")[1],
            first_problem=first_problem.message,
        )
    parsed.contacts.sort(key=lambda c: c["email_normalised"])
    return parsed


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


def _executemany(session: Session, stmt: ClauseElement, rows: list[dict[str, Any]]) -> None:
    """Run ``stmt`` once per row through the driver's own executemany.

    SQLAlchemy's executemany processes every parameter of every row in Python; here the
    rows hold only plain values (str, int, bool, None) except the timestamps, which are the
    same for the whole chunk, so they are converted once and the rows go to the driver as
    they are. That halves the cost of the contacts upsert on SQLite.
    """
    conn = session.connection()
    first = rows[0]
    compiled = cast(SQLCompiler, stmt.compile(dialect=conn.dialect, column_keys=list(first)))
    convert = UTCDateTime().bind_processor(conn.dialect)
    fixed = {
        key: convert(first[key]) if convert else first[key]
        for key in ("created_at", "updated_at")
        if key in first
    }
    if compiled.positional:
        order = list(compiled.positiontup or ())
        params: list[Any] = [
            tuple(fixed[k] if k in fixed else row[k] for k in order) for row in rows
        ]
    else:
        params = [{**row, **fixed} for row in rows]
    conn.exec_driver_sql(str(compiled), params)


def _upsert_contacts(session: Session, parsed: ParsedChunk) -> dict[str, int]:
    """Upsert the chunk's contacts; return their ids by normalised address."""
    stmt = upsert(session, CONTACTS)
    new = stmt.excluded
    updated = ["email", "crm_person_id", *(NAME_COLUMNS[c] for c in parsed.present)]
    stmt = stmt.on_conflict_do_update(
        index_elements=[CONTACTS.c.email_normalised],
        set_={**{c: new[c] for c in updated}, "updated_at": new.updated_at},
        where=or_(*(CONTACTS.c[c].is_distinct_from(new[c]) for c in updated)),
    )
    if parsed.contacts:
        _executemany(session, stmt, parsed.contacts)
    ids: dict[str, int] = {}
    norms = [c["email_normalised"] for c in parsed.contacts]
    for batch in _batches(norms, IN_BATCH):
        result = session.execute(
            select(CONTACTS.c.email_normalised, CONTACTS.c.id).where(
                CONTACTS.c.email_normalised.in_(batch)
            )
        )
        ids.update({norm: contact_id for norm, contact_id in result})
    return ids


def _held(session: Session, campaign_id: int, snapshot: int, ids: list[int]) -> dict[int, int]:
    """Contact id -> CRM person of the audience rows this snapshot already holds."""
    held: dict[int, int] = {}
    for batch in _batches(ids, IN_BATCH):
        result = session.execute(
            select(RECIPIENTS.c.contact_id, RECIPIENTS.c.crm_person_id).where(
                RECIPIENTS.c.campaign_id == campaign_id,
                RECIPIENTS.c.snapshot == snapshot,
                RECIPIENTS.c.contact_id.in_(batch),
            )
        )
        held.update({contact_id: person for contact_id, person in result})
    return held


def _upsert_audience(session: Session, rows: list[dict[str, Any]]) -> set[int]:
    """Upsert audience rows; return the contact ids written. A row this snapshot already
    gave to another CRM person is left alone (a concurrent duplicate) and not returned."""
    stmt = upsert(session, RECIPIENTS)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[RECIPIENTS.c.campaign_id, RECIPIENTS.c.contact_id],
        set_={"snapshot": new.snapshot, "crm_person_id": new.crm_person_id},
        where=or_(
            RECIPIENTS.c.snapshot != new.snapshot,
            RECIPIENTS.c.crm_person_id.is_not_distinct_from(new.crm_person_id),
        ),
    )
    if not rows:
        return set()
    result = session.connection().execute(stmt.returning(RECIPIENTS.c.contact_id), rows)
    return set(result.scalars())


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
    session: Session, crm_mailshot_id: int, chunk: RecipientChunk
) -> RecipientsWritten:
    """Write one chunk of a snapshot's audience (idempotent), in one transaction."""
    ensure_not_paused(session)
    parsed = parse_chunk(chunk.columns, chunk.rows)
    campaign = campaign_for_write(session, crm_mailshot_id, exclusive=False)
    check_snapshot(crm_mailshot_id, chunk.snapshot, campaign.current_snapshot)
    campaign_id, snapshot = campaign.id, chunk.snapshot

    ids = _upsert_contacts(session, parsed)
    held = _held(session, campaign_id, snapshot, list(ids.values()))
    duplicates = list(parsed.duplicates)
    to_write: list[dict[str, Any]] = []
    person_of: dict[int, tuple[int, str]] = {}
    already = 0
    for contact in parsed.contacts:
        norm, person = contact["email_normalised"], contact["crm_person_id"]
        contact_id = ids[norm]
        holder = held.get(contact_id)
        if holder is None:
            to_write.append(
                {
                    "campaign_id": campaign_id,
                    "contact_id": contact_id,
                    "snapshot": snapshot,
                    "crm_person_id": person,
                }
            )
            person_of[contact_id] = (person, norm)
        elif holder == person:
            already += 1
        else:
            duplicates.append((person, norm))
    to_write.sort(key=lambda r: r["contact_id"])
    written = _upsert_audience(session, to_write)
    for contact_id, (person, norm) in person_of.items():
        if contact_id not in written:
            duplicates.append((person, norm))
    _record_duplicates(session, campaign_id, snapshot, duplicates)
    session.commit()
    return RecipientsWritten(written=already + len(written), duplicates=len(duplicates))


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
